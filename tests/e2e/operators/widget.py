"""A small kopf operator, run unchanged by ``kopf run`` in the e2e tests.

For every ``Widget`` (``demo.cloudlet.dev/v1``) it keeps a ConfigMap named
``<widget>-config`` holding the widget's ``spec.message``, and it reports its
progress in the widget's status: kopf stores each handler's return value in
``status.<handler id>``, and the handlers also patch ``status.phase`` and
``status.observedMessage`` themselves. Deleting a widget runs ``on.delete``
through kopf's finalizer, which removes the ConfigMap. A widget with
``spec.flaky: true`` fails its first creation attempt, to exercise kopf's
retries (handler progress kept in annotations).
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes

GROUP, VERSION, PLURAL = "demo.cloudlet.dev", "v1", "widgets"


def _core() -> Any:
    return kubernetes.client.CoreV1Api()


def _configmap(name: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config", "labels": {"app.kubernetes.io/managed-by": "widget-operator"}},
        "data": {"message": message},
    }


@kopf.on.startup()
def configure(**_: Any) -> None:
    kubernetes.config.load_kube_config()  # for the ConfigMaps; kopf has its own client


@kopf.on.create(GROUP, VERSION, PLURAL)
def create_fn(body: Any, spec: Any, name: str, namespace: str, patch: kopf.Patch, logger: Any,
              retry: int, **_: Any) -> dict[str, Any]:
    if spec.get("flaky") and retry == 0:
        # kopf records the failed attempt in its progress annotation and retries later.
        raise kopf.TemporaryError("flaky widget: failing the first attempt", delay=1)
    message = spec.get("message", "")
    cm = _configmap(name, message)
    kopf.adopt(cm)  # ownerReferences -> the widget
    _core().create_namespaced_config_map(namespace, cm)
    logger.info("created configmap %s-config", name)
    kopf.info(body, reason="ConfigMapCreated", message=f"created configmap {name}-config")
    patch.status["phase"] = "Ready"
    patch.status["observedMessage"] = message
    return {"configmap": f"{name}-config", "message": message}


@kopf.on.update(GROUP, VERSION, PLURAL)
def update_fn(spec: Any, name: str, namespace: str, patch: kopf.Patch, logger: Any, **_: Any) -> dict[str, Any]:
    message = spec.get("message", "")
    _core().patch_namespaced_config_map(f"{name}-config", namespace, {"data": {"message": message}})
    logger.info("updated configmap %s-config", name)
    patch.status["observedMessage"] = message
    return {"message": message}


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete_fn(name: str, namespace: str, logger: Any, **_: Any) -> None:
    try:
        _core().delete_namespaced_config_map(f"{name}-config", namespace)
    except kubernetes.client.ApiException as e:
        if e.status != 404:
            raise
    logger.info("deleted configmap %s-config", name)
