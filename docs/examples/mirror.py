"""ConfigMap mirror: the worked example of docs/controllers.md (a test runs it).

For every ConfigMap labelled ``mirror.example.com/enabled=true`` the
controller keeps a ConfigMap ``<name>-mirror`` in the same namespace with the
same ``data``, owned by the source (so the garbage collector removes it with
the source), and annotates the source with ``mirror.example.com/mirror:
<name>-mirror``. Removing the label removes the mirror and the annotation.

Run it against any Kubernetes API server (cloudlet's or a real cluster's)::

    python docs/examples/mirror.py --kubeconfig ~/.kube/config --namespace default
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging

from cloudlet.api.errors import APIError
from cloudlet.client import (
    OWNER_INDEX,
    Client,
    Controller,
    EventRecorder,
    HTTPClient,
    Permanent,
    ResourceRef,
    Result,
    Retry,
    SharedInformerFactory,
    split_key,
)
from cloudlet.client.events import NORMAL, WARNING

CONFIGMAPS = ResourceRef("", "v1", "configmaps")
ENABLED = "mirror.example.com/enabled"
MIRROR = "mirror.example.com/mirror"  # annotation on the source
MIRROR_OF = "mirror.example.com/mirror-of"  # label on the mirror


def is_source(cm: dict) -> bool:
    return (cm["metadata"].get("labels") or {}).get(ENABLED) == "true"


def desired_mirror(source: dict) -> dict:
    meta = source["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{meta['name']}-mirror",
            "namespace": meta["namespace"],
            "labels": {MIRROR_OF: meta["name"]},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": meta["name"], "uid": meta["uid"],
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "data": dict(source.get("data") or {}),
    }


class MirrorController:
    """Keeps ``<name>-mirror`` in step with each labelled ConfigMap."""

    def __init__(self, client: Client, factory: SharedInformerFactory, namespace: str | None = None) -> None:
        self.client = client
        self.configmaps = factory.informer(CONFIGMAPS, namespace)  # shared list+watch cache
        self.recorder = EventRecorder(client, "configmap-mirror")
        self.controller: Controller[str] = Controller("configmap-mirror", self.reconcile, workers=2)
        # sources (and ConfigMaps that stopped being sources) enqueue their own key ...
        self.controller.watch(self.configmaps, predicate=is_source)
        # ... and a mirror enqueues its owner's key, so drift and deletion get repaired
        self.controller.watch_owned(self.configmaps, "ConfigMap")

    async def run(self) -> None:
        await self.controller.run()  # starts workers once the informer has synced

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        source = self.configmaps.get(key)  # read-only: copy before changing
        if source is None or source["metadata"].get("deletionTimestamp"):
            return None  # gone: the garbage collector deletes its mirror
        owned = self.configmaps.by_index(OWNER_INDEX, source["metadata"]["uid"])
        if not is_source(source):
            for mirror in owned:
                await self._delete(mirror)
            await self._annotate(source, None)
            return None
        want = desired_mirror(source)
        mirror_name = want["metadata"]["name"]
        current = self.configmaps.get(f"{namespace}/{mirror_name}")
        if current is None:
            try:
                await self.client.create(CONFIGMAPS, want)
            except APIError as e:
                if e.code == 409:  # our cache is behind: try again shortly
                    raise Retry(f"{mirror_name} exists but is not cached yet") from e
                raise
            await self.recorder.event(source, NORMAL, "Created", f"Created mirror {mirror_name}")
        elif mirror_name not in {m["metadata"]["name"] for m in owned}:
            await self.recorder.event(source, WARNING, "MirrorConflict", f"{mirror_name} exists and is not ours")
            raise Permanent(f"{namespace}/{mirror_name} is not owned by {name}")  # a human must act
        elif current.get("data") != want["data"] or current["metadata"].get("labels") != want["metadata"]["labels"]:
            body = copy.deepcopy(current)
            body["data"] = want["data"]
            body["metadata"]["labels"] = want["metadata"]["labels"]
            try:
                await self.client.update(CONFIGMAPS, body)  # compare-and-swap on resourceVersion
            except APIError as e:
                if e.code == 409:
                    raise Retry(f"{mirror_name} changed meanwhile") from e
                raise
            await self.recorder.event(source, NORMAL, "Updated", f"Updated mirror {mirror_name}")
        await self._annotate(source, mirror_name)
        return None

    async def _annotate(self, source: dict, mirror_name: str | None) -> None:
        if (source["metadata"].get("annotations") or {}).get(MIRROR) == mirror_name:
            return  # write only when desired and actual differ
        meta = source["metadata"]
        patch = {"metadata": {"annotations": {MIRROR: mirror_name}}}  # None removes it
        await self.client.patch(CONFIGMAPS, meta["name"], patch, "merge", meta["namespace"])

    async def _delete(self, mirror: dict) -> None:
        meta = mirror["metadata"]
        try:
            await self.client.delete(CONFIGMAPS, meta["name"], meta["namespace"],
                                     preconditions={"uid": meta["uid"]})
        except APIError as e:
            if e.code != 404:  # already gone is fine
                raise


async def run(client: Client, namespace: str | None = None) -> None:
    """Run the mirror controller over ``client`` until cancelled."""
    factory = SharedInformerFactory(client, namespace=namespace)
    mirror = MirrorController(client, factory, namespace)
    factory.start()
    try:
        await mirror.run()
    finally:
        await factory.shutdown()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--context")
    ap.add_argument("--namespace", help="watch one namespace (default: all)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    async with HTTPClient.from_kubeconfig(args.kubeconfig, args.context) as client:
        await run(client, args.namespace)


if __name__ == "__main__":
    asyncio.run(main())
