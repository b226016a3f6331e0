"""410 Gone/Expired: watches and continue tokens from before a compaction.

The server here compacts every second and keeps only 5 revisions of history.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.e2e.harness import CloudletProcess, api_client, wait_until

NS = "default"
CMS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture(scope="module")
def cloudlet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("cloudlet-compact"),
                           extra_args=["--compact-interval", "1", "--min-history", "5"])
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def core(cloudlet: CloudletProcess) -> Iterator[Any]:
    c = api_client(cloudlet)
    yield client.CoreV1Api(c)
    c.close()


def current_rv(cloudlet: CloudletProcess) -> int:
    code, body = cloudlet.request("GET", CMS)
    assert code == 200
    return int(body["metadata"]["resourceVersion"])


def churn(cloudlet: CloudletProcess, prefix: str, n: int = 25) -> None:
    for i in range(n):
        code, _ = cloudlet.request("POST", CMS, {"metadata": {"name": f"{prefix}-{i}"}, "data": {"i": str(i)}})
        assert code == 201


def compacted_past(cloudlet: CloudletProcess, rv: int) -> None:
    """Wait until a watch from ``rv`` is refused (the server compacted past it)."""

    def refused() -> bool:
        code, _ = cloudlet.request("GET", f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=1", timeout=5)
        return code == 410

    wait_until(refused, timeout=10, interval=0.2, what=f"compaction past revision {rv}")


@pytest.fixture(scope="module")
def old_rv(cloudlet: CloudletProcess) -> int:
    rv = current_rv(cloudlet)
    churn(cloudlet, "early")
    compacted_past(cloudlet, rv)
    return rv


def _expired_status(body: Any) -> dict:
    """The Status from a 410 response, or from the ERROR event of a 200 watch stream."""
    if isinstance(body, dict):
        return body
    first = json.loads(body.strip().splitlines()[0])
    assert first["type"] == "ERROR", first
    return first["object"]


def test_watch_from_compacted_revision_is_expired(cloudlet: CloudletProcess, old_rv: int) -> None:
    code, body = cloudlet.request("GET", f"{CMS}?watch=1&resourceVersion={old_rv}&timeoutSeconds=2", timeout=10)
    assert code in (200, 410), (code, body)
    st = _expired_status(body)
    assert st["kind"] == "Status"
    assert st["status"] == "Failure"
    assert st["code"] == 410
    assert st["reason"] == "Expired"
    m = re.fullmatch(r"too old resource version: (\d+) \((\d+)\)", st["message"])
    assert m, st["message"]
    assert int(m.group(1)) == old_rv and int(m.group(2)) > old_rv


def test_official_client_watch_raises_410(core, old_rv: int) -> None:
    with pytest.raises(ApiException) as ei:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=str(old_rv), timeout_seconds=2):
            pass
    assert ei.value.status == 410


def test_kubectl_reports_expired(cloudlet: CloudletProcess, old_rv: int) -> None:
    p = cloudlet.kubectl("get", "--raw", f"{CMS}?watch=1&resourceVersion={old_rv}&timeoutSeconds=2", check=False)
    if p.returncode == 0:  # served as a 200 stream with an ERROR event
        st = _expired_status(p.stdout)
        assert st["code"] == 410 and st["reason"] == "Expired"
    else:
        assert "Error from server (Expired): too old resource version" in p.stderr, p.stderr


def test_watch_from_recent_revision_still_works(cloudlet: CloudletProcess, core, old_rv: int) -> None:
    rv = current_rv(cloudlet)
    code, _ = cloudlet.request("POST", CMS, {"metadata": {"name": "after-compaction"}})
    assert code == 201
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=str(rv), timeout_seconds=5):
        assert ev["type"] == "ADDED" and ev["object"].metadata.name == "after-compaction"
        w.stop()
        break
    else:
        pytest.fail("no event from a recent revision")


def test_kubectl_get_watch_unaffected_by_compaction(cloudlet: CloudletProcess, old_rv: int) -> None:
    """kubectl get -w lists first, then watches from the list's revision: never too old."""
    from tests.e2e.harness import KubectlStream

    s = KubectlStream(cloudlet, "get", "cm", "-w", "--output-watch-events")
    try:
        s.wait_line(lambda line: "after-compaction" in line or "early-0" in line)
        cloudlet.request("POST", CMS, {"metadata": {"name": "watched-late"}})
        assert s.wait_line(lambda line: "watched-late" in line).split()[0] == "ADDED"
    finally:
        s.close()


def test_open_watch_survives_compaction(cloudlet: CloudletProcess, core) -> None:
    """A watch opened before compaction keeps delivering every event, in order, with no gap."""
    rv = current_rv(cloudlet)
    names: list[str] = []
    done = threading.Event()
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=str(rv), timeout_seconds=20):
            if ev["type"] == "ADDED" and ev["object"].metadata.name.startswith("during-"):
                names.append(ev["object"].metadata.name)
                if len(names) == 25:
                    w.stop()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    churn(cloudlet, "during")
    compacted_past(cloudlet, rv)
    assert done.wait(15), names
    assert names == [f"during-{i}" for i in range(25)]


def test_continue_token_from_before_compaction_is_expired(cloudlet: CloudletProcess) -> None:
    code, page = cloudlet.request("GET", f"{CMS}?limit=3")
    assert code == 200
    token = page["metadata"]["continue"]
    assert token
    rv = int(page["metadata"]["resourceVersion"])
    churn(cloudlet, "later")
    compacted_past(cloudlet, rv)
    code, body = cloudlet.request("GET", f"{CMS}?limit=3&continue={token}")
    assert code == 410, body
    assert body["reason"] == "Expired"
    assert "continue" in body["message"]
    # the client-go wording users search for
    assert body["message"].startswith("The provided continue parameter is too old to display a consistent list result.")


def test_official_client_continue_410(cloudlet: CloudletProcess, core) -> None:
    page = core.list_namespaced_config_map(NS, limit=2)
    token = page.metadata._continue
    churn(cloudlet, "later2")
    compacted_past(cloudlet, int(page.metadata.resource_version))
    with pytest.raises(ApiException) as ei:
        core.list_namespaced_config_map(NS, limit=2, _continue=token)
    assert ei.value.status == 410
    assert json.loads(ei.value.body)["reason"] == "Expired"
    # a fresh list works and sees everything
    names = {i.metadata.name for i in core.list_namespaced_config_map(NS).items}
    assert {f"later2-{i}" for i in range(25)} <= names


def test_compaction_keeps_objects(cloudlet: CloudletProcess) -> None:
    code, body = cloudlet.request("GET", CMS)
    names = {i["metadata"]["name"] for i in body["items"]}
    assert {f"early-{i}" for i in range(25)} <= names
    code, obj = cloudlet.request("GET", f"{CMS}/early-7")
    assert code == 200 and obj["data"] == {"i": "7"}
    assert "compacted" in cloudlet.log()
