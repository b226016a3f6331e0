"""Fixtures: one real cloudlet process per test module (fresh data dir)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, api_client


@pytest.fixture(scope="module")
def cloudlet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    # a module testing API semantics alone sets CLOUDLET_CONTROLLERS = "*,-deployment,-replicaset" so that no
    # controller writes its objects between a request and the check (kube-controller-manager --controllers syntax)
    controllers = getattr(request.module, "CLOUDLET_CONTROLLERS", None)
    proc = CloudletProcess(tmp_path_factory.mktemp("cloudlet"),
                           env={"CLOUDLET_CONTROLLERS": controllers} if controllers else {})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def kubectl(cloudlet: CloudletProcess):  # type: ignore[no-untyped-def]
    return cloudlet.kubectl


@pytest.fixture(scope="module")
def k8s(cloudlet: CloudletProcess) -> Iterator[Any]:
    """The official client's ApiClient for the module's server."""
    c = api_client(cloudlet)
    yield c
    c.close()


@pytest.fixture(scope="module")
def core(k8s: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(k8s)


@pytest.fixture(scope="module")
def apps(k8s: Any) -> Any:
    from kubernetes import client

    return client.AppsV1Api(k8s)
