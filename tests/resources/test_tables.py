"""Tests for the server-side table printers in :mod:`cloudlet.resources.tables`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cloudlet.resources.registry import Column
from cloudlet.resources.tables import TABLES, age, human_duration, pod_row_conditions

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC).timestamp()


def ts(seconds_ago: float) -> str:
    """An RFC 3339 timestamp ``seconds_ago`` before :data:`NOW`."""
    return datetime.fromtimestamp(NOW - seconds_ago, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, seconds_ago: float = 3600, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(seconds_ago), **extra}


def row(key: str, obj: dict[str, Any]) -> list[Any]:
    return TABLES[key][1](obj, now=NOW)


def cells(key: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The row as ``{column name: cell}``."""
    columns = TABLES[key][0]
    values = row(key, obj)
    assert len(values) == len(columns)
    return {c.name: v for c, v in zip(columns, values, strict=True)}


def names(key: str, priority: int | None = None) -> list[str]:
    return [c.name for c in TABLES[key][0] if priority is None or c.priority == priority]


# --------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (-1, "0s"),
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (659, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60 + 30, "3h5m"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (5 * 86400, "5d"),
        (5 * 86400 + 3 * 3600, "5d3h"),
        (8 * 86400 - 1, "7d23h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (760 * 86400, "2y30d"),
        (3 * 365 * 86400, "3y"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400 + 5 * 86400, "20y"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_age() -> None:
    assert age({"metadata": {"creationTimestamp": "2026-11-30T11:55:00Z"}}, now=NOW) == "5m"
    assert age({"metadata": {"creationTimestamp": "2026-11-30T11:59:59.5Z"}}, now=NOW) == "0s"
    assert age({"metadata": {"creationTimestamp": "2026-11-30T13:00:00+02:00"}}, now=NOW) == "60m"
    assert age({"metadata": {"creationTimestamp": "2026-11-29T22:11:28Z"}}, now=NOW) == "13h"
    assert age({"metadata": {}}, now=NOW) == "<unknown>"
    assert age({}, now=NOW) == "<unknown>"
    assert age({"metadata": {"creationTimestamp": "yesterday"}}, now=NOW) == "<unknown>"
    # without `now` the real clock is used
    assert age({"metadata": {"creationTimestamp": "2000-01-01T00:00:00Z"}}).endswith("y")


# ------------------------------------------------------------------------ columns

EXPECTED_COLUMNS = {
    "/pods": [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ],
    "/nodes": [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
        "Internal-IP",
        "External-IP",
        "OS-Image",
        "Kernel-Version",
        "Container-Runtime",
    ],
    "/namespaces": ["Name", "Status", "Age"],
    "/services": ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"],
    "/endpoints": ["Name", "Endpoints", "Age"],
    "/configmaps": ["Name", "Data", "Age"],
    "/secrets": ["Name", "Type", "Data", "Age"],
    "/events": [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Subobject",
        "Source",
        "Message",
        "First Seen",
        "Count",
        "Name",
    ],
    "events.k8s.io/events": [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Subobject",
        "Source",
        "Message",
        "First Seen",
        "Count",
        "Name",
    ],
    "/serviceaccounts": ["Name", "Secrets", "Age"],
    "apps/deployments": [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ],
    "apps/replicasets": [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ],
    "autoscaling/horizontalpodautoscalers": [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ],
    "scheduling.k8s.io/priorityclasses": [
        "Name",
        "Value",
        "Global-Default",
        "Age",
        "PreemptionPolicy",
    ],
    "node.k8s.io/runtimeclasses": ["Name", "Handler", "Age"],
    "coordination.k8s.io/leases": ["Name", "Holder", "Age"],
    "discovery.k8s.io/endpointslices": ["Name", "AddressType", "Ports", "Endpoints", "Age"],
    "policy/poddisruptionbudgets": ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"],
}

EXPECTED_DEFAULT_VIEW = {
    "/pods": ["Name", "Ready", "Status", "Restarts", "Age"],
    "/nodes": ["Name", "Status", "Roles", "Age", "Version"],
    "/services": ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
    "/events": ["Last Seen", "Type", "Reason", "Object", "Message"],
    "apps/deployments": ["Name", "Ready", "Up-to-date", "Available", "Age"],
    "apps/replicasets": ["Name", "Desired", "Current", "Ready", "Age"],
}

EXPECTED_TYPES = {
    ("/pods", "Restarts"): "string",
    ("apps/replicasets", "Desired"): "integer",
    ("apps/replicasets", "Current"): "integer",
    ("apps/replicasets", "Ready"): "integer",
    ("apps/deployments", "Up-to-date"): "string",
    ("scheduling.k8s.io/priorityclasses", "Value"): "integer",
    ("scheduling.k8s.io/priorityclasses", "Global-Default"): "boolean",
    ("/configmaps", "Data"): "string",
    ("/events", "Count"): "string",
}


def test_every_kind_is_present() -> None:
    assert set(TABLES) == set(EXPECTED_COLUMNS)


@pytest.mark.parametrize("key", sorted(EXPECTED_COLUMNS))
def test_column_names(key: str) -> None:
    assert names(key) == EXPECTED_COLUMNS[key]


@pytest.mark.parametrize("key", sorted(EXPECTED_DEFAULT_VIEW))
def test_default_view_columns(key: str) -> None:
    assert names(key, priority=0) == EXPECTED_DEFAULT_VIEW[key]


@pytest.mark.parametrize("key", sorted(EXPECTED_COLUMNS))
def test_column_definitions_are_well_formed(key: str) -> None:
    columns = TABLES[key][0]
    for col in columns:
        assert isinstance(col, Column)
        assert col.type in ("string", "integer", "boolean")
        assert col.priority in (0, 1)
        assert col.description
        assert col.format == ("name" if col.name == "Name" else "")
        json.dumps(col.definition())
    name_col = next(c for c in columns if c.name == "Name")
    assert name_col.priority == (1 if key.endswith("/events") else 0)
    age_cols = [c for c in columns if c.name == "Age"]
    assert all(c.type == "string" and c.priority == 0 for c in age_cols)


@pytest.mark.parametrize(("key", "column"), sorted(EXPECTED_TYPES))
def test_column_types(key: str, column: str) -> None:
    col = next(c for c in TABLES[key][0] if c.name == column)
    assert col.type == EXPECTED_TYPES[(key, column)]


@pytest.mark.parametrize("key", sorted(EXPECTED_COLUMNS))
def test_rows_survive_bare_objects(key: str) -> None:
    for obj in ({}, {"metadata": {"name": "x"}}, {"metadata": None, "spec": None, "status": None}):
        values = TABLES[key][1](obj)
        assert len(values) == len(TABLES[key][0])
        json.dumps(values)
        assert all(isinstance(v, str | int) for v in values)


# --------------------------------------------------------------------------- pods


def container_status(name: str = "app", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": name, "ready": False, "restartCount": 0, "state": {}}
    base.update(kw)
    return base


def running(name: str = "app", ready: bool = True, **kw: Any) -> dict[str, Any]:
    return container_status(
        name, ready=ready, started=True, state={"running": {"startedAt": ts(60)}}, **kw
    )


def waiting(reason: str, name: str = "app", **kw: Any) -> dict[str, Any]:
    return container_status(name, state={"waiting": {"reason": reason}}, **kw)


def terminated(name: str = "app", **term: Any) -> dict[str, Any]:
    return container_status(name, state={"terminated": term})


def pod(
    statuses: list[dict[str, Any]] | None = None,
    *,
    containers: int | None = None,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    conditions: list[dict[str, Any]] | None = None,
    **status: Any,
) -> dict[str, Any]:
    statuses = statuses or []
    count = containers if containers is not None else max(len(statuses), 1)
    obj: dict[str, Any] = {
        "metadata": meta("web-1", 600),
        "spec": {
            "containers": [{"name": f"c{i}", "image": "nginx"} for i in range(count)],
        },
        "status": {"phase": phase, "containerStatuses": statuses, **status},
    }
    if init is not None:
        obj["spec"]["initContainers"] = init
    if init_statuses is not None:
        obj["status"]["initContainerStatuses"] = init_statuses
    if conditions is not None:
        obj["status"]["conditions"] = conditions
    return obj


def pod_status(obj: dict[str, Any]) -> str:
    return cells("/pods", obj)["Status"]


def test_pod_running_row() -> None:
    obj = pod(
        [running("a"), running("b", ready=False)],
        podIP="10.88.0.7",
        podIPs=[{"ip": "10.88.0.7"}, {"ip": "fd00::7"}],
    )
    obj["spec"]["nodeName"] = "node-1"
    assert row("/pods", obj) == [
        "web-1",
        "1/2",
        "Running",
        "0",
        "10m",
        "10.88.0.7",
        "node-1",
        "<none>",
        "<none>",
    ]


def test_pod_pending_without_statuses() -> None:
    obj = {"metadata": meta("p", 5), "spec": {"containers": [{"name": "a"}]}, "status": {}}
    assert row("/pods", obj) == [
        "p",
        "0/1",
        "Pending",
        "0",
        "5s",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]


def test_pod_wide_cells() -> None:
    obj = pod(
        [running()],
        podIP="10.0.0.9",
        nominatedNodeName="node-2",
        conditions=[
            {"type": "example.com/gate-a", "status": "True"},
            {"type": "example.com/gate-b", "status": "False"},
            {"type": "Ready", "status": "True"},
        ],
    )
    obj["spec"]["readinessGates"] = [
        {"conditionType": "example.com/gate-a"},
        {"conditionType": "example.com/gate-b"},
    ]
    got = cells("/pods", obj)
    assert got["IP"] == "10.0.0.9"  # falls back to status.podIP
    assert got["Node"] == "<none>"
    assert got["Nominated Node"] == "node-2"
    assert got["Readiness Gates"] == "1/2"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([waiting("ContainerCreating")], "ContainerCreating"),
        ([waiting("ImagePullBackOff")], "ImagePullBackOff"),
        ([waiting("CrashLoopBackOff")], "CrashLoopBackOff"),
        ([terminated(exitCode=0, reason="Completed")], "Completed"),
        ([terminated(exitCode=137, reason="OOMKilled")], "OOMKilled"),
        ([terminated(exitCode=1, reason="Error")], "Error"),
        ([terminated(exitCode=137, signal=9)], "Signal:9"),
        ([terminated(exitCode=3)], "ExitCode:3"),
        # the first container in spec order wins (statuses are walked backwards)
        ([waiting("CrashLoopBackOff", "a"), waiting("ErrImagePull", "b")], "CrashLoopBackOff"),
        ([running("a"), waiting("ErrImagePull", "b")], "ErrImagePull"),
    ],
)
def test_pod_container_states(statuses: list[dict[str, Any]], expected: str) -> None:
    assert pod_status(pod(statuses)) == expected


def test_pod_completed_with_running_sidecar_reads_running_or_notready() -> None:
    statuses = [terminated("job", exitCode=0, reason="Completed"), running("sidecar")]
    # statuses are walked last to first: "job" is looked at last and says Completed
    ready = pod(statuses, conditions=[{"type": "Ready", "status": "True"}])
    assert pod_status(ready) == "Running"
    not_ready = pod(statuses, conditions=[{"type": "Ready", "status": "False"}])
    assert pod_status(not_ready) == "NotReady"
    assert cells("/pods", ready)["Ready"] == "1/2"


def test_pod_phase_and_status_reason() -> None:
    assert pod_status(pod([], phase="Succeeded", containers=1)) == "Succeeded"
    assert pod_status(pod([], phase="Failed", reason="Evicted", containers=1)) == "Evicted"
    assert pod_status(pod([], phase="Unknown", reason="NodeLost", containers=1)) == "NodeLost"
    gated = pod(
        [],
        phase="Pending",
        containers=1,
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert pod_status(gated) == "SchedulingGated"


def test_pod_terminating() -> None:
    obj = pod([running()])
    obj["metadata"]["deletionTimestamp"] = ts(1)
    assert pod_status(obj) == "Terminating"
    # a pod that already finished keeps its final status while being deleted
    done = pod([terminated(exitCode=0, reason="Completed")], phase="Succeeded")
    done["metadata"]["deletionTimestamp"] = ts(1)
    assert pod_status(done) == "Completed"
    # deleted pods on an unreachable node are Unknown
    lost = pod([running()], phase="Running", reason="NodeLost")
    lost["metadata"]["deletionTimestamp"] = ts(1)
    assert pod_status(lost) == "Unknown"


def test_pod_restarts_with_last_restart_age() -> None:
    statuses = [
        waiting(
            "CrashLoopBackOff",
            restartCount=5,
            lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ts(300)}},
        ),
        running(
            "b",
            restartCount=2,
            lastState={"terminated": {"exitCode": 1, "finishedAt": ts(4000)}},
        ),
    ]
    got = cells("/pods", pod(statuses))
    assert got["Restarts"] == "7 (5m ago)"
    assert got["Status"] == "CrashLoopBackOff"
    assert got["Ready"] == "1/2"


def test_pod_restarts_without_termination_time() -> None:
    statuses = [running(restartCount=3)]
    assert cells("/pods", pod(statuses))["Restarts"] == "3"


def test_pod_init_progress() -> None:
    init = [{"name": "migrate", "image": "m"}, {"name": "seed", "image": "s"}]
    first = pod(
        [waiting("PodInitializing", "app")],
        init=init,
        init_statuses=[running("migrate", ready=False), waiting("PodInitializing", "seed")],
        phase="Pending",
    )
    assert pod_status(first) == "Init:0/2"
    second = pod(
        [waiting("PodInitializing", "app")],
        init=init,
        init_statuses=[
            terminated("migrate", exitCode=0, reason="Completed"),
            running("seed", ready=False),
        ],
        phase="Pending",
    )
    assert pod_status(second) == "Init:1/2"
    assert cells("/pods", second)["Ready"] == "0/1"
    # waiting in PodInitializing counts as progress, not as a reason
    fresh = pod(
        [waiting("PodInitializing", "app")],
        init=init[:1],
        init_statuses=[waiting("PodInitializing", "migrate")],
        phase="Pending",
    )
    assert pod_status(fresh) == "Init:0/1"


@pytest.mark.parametrize(
    ("init_status", "expected"),
    [
        (waiting("CrashLoopBackOff", "migrate"), "Init:CrashLoopBackOff"),
        (waiting("ImagePullBackOff", "migrate"), "Init:ImagePullBackOff"),
        (terminated("migrate", exitCode=1, reason="Error"), "Init:Error"),
        (terminated("migrate", exitCode=2), "Init:ExitCode:2"),
        (terminated("migrate", exitCode=137, signal=9), "Init:Signal:9"),
    ],
)
def test_pod_init_failures(init_status: dict[str, Any], expected: str) -> None:
    obj = pod(
        [waiting("PodInitializing", "app")],
        init=[{"name": "migrate", "image": "m"}],
        init_statuses=[init_status],
        phase="Pending",
    )
    assert pod_status(obj) == expected


def test_pod_init_restarts_count_while_initializing() -> None:
    obj = pod(
        [waiting("PodInitializing", "app")],
        init=[{"name": "migrate", "image": "m"}],
        init_statuses=[
            waiting(
                "CrashLoopBackOff",
                "migrate",
                restartCount=4,
                lastState={"terminated": {"exitCode": 1, "finishedAt": ts(30)}},
            )
        ],
        phase="Pending",
    )
    got = cells("/pods", obj)
    assert got["Status"] == "Init:CrashLoopBackOff"
    assert got["Restarts"] == "4 (30s ago)"


def test_pod_restartable_init_container_counts_as_container() -> None:
    init = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    obj = pod(
        [running("app")],
        init=init,
        init_statuses=[
            running(
                "proxy",
                restartCount=1,
                lastState={"terminated": {"exitCode": 1, "finishedAt": ts(90)}},
            )
        ],
        conditions=[{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
    )
    got = cells("/pods", obj)
    assert got["Ready"] == "2/2"
    assert got["Status"] == "Running"
    assert got["Restarts"] == "1 (90s ago)"


def test_pod_row_conditions() -> None:
    assert pod_row_conditions(pod([], phase="Running")) == []
    done = pod_row_conditions(pod([], phase="Succeeded"))
    assert done == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    assert pod_row_conditions(pod([], phase="Failed"))[0]["reason"] == "Failed"


# -------------------------------------------------------------------------- nodes


def node(**kw: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": meta("node-1", 3 * 86400, labels=kw.pop("labels", {})),
        "spec": kw.pop("spec", {}),
        "status": {
            "conditions": kw.pop(
                "conditions",
                [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                ],
            ),
            "nodeInfo": {
                "kubeletVersion": "v1.31.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "cloudlet://0.1.0",
            },
            "addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "192.168.1.10"},
            ],
        },
    }
    return obj


def test_node_row() -> None:
    obj = node(labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"})
    assert row("/nodes", obj) == [
        "node-1",
        "Ready",
        "control-plane,worker",
        "3d",
        "v1.31.0",
        "192.168.1.10",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-18-amd64",
        "cloudlet://0.1.0",
    ]


def test_node_status_variants() -> None:
    assert (
        cells("/nodes", node(spec={"unschedulable": True}))["Status"] == "Ready,SchedulingDisabled"
    )
    assert (
        cells("/nodes", node(conditions=[{"type": "Ready", "status": "False"}]))["Status"]
        == "NotReady"
    )
    assert (
        cells("/nodes", node(conditions=[{"type": "Ready", "status": "Unknown"}]))["Status"]
        == "NotReady"
    )
    assert cells("/nodes", node(conditions=[]))["Status"] == "Unknown"
    assert cells("/nodes", node(conditions=[], spec={"unschedulable": True}))["Status"] == (
        "Unknown,SchedulingDisabled"
    )
    assert cells("/nodes", node())["Roles"] == "<none>"
    bare = cells("/nodes", {"metadata": meta("n")})
    assert bare["OS-Image"] == bare["Kernel-Version"] == bare["Container-Runtime"] == "<unknown>"
    assert bare["Internal-IP"] == bare["External-IP"] == "<none>"


# --------------------------------------------------------------------- namespaces


def test_namespace_row() -> None:
    obj = {"metadata": meta("team-a", 120), "status": {"phase": "Active"}}
    assert row("/namespaces", obj) == ["team-a", "Active", "2m"]
    going = {"metadata": meta("old", deletionTimestamp=ts(1)), "status": {"phase": "Terminating"}}
    assert row("/namespaces", going)[1] == "Terminating"
    assert row("/namespaces", {"metadata": meta("fresh")})[1] == "Active"


# ----------------------------------------------------------------------- services


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("web", 86400), "spec": spec, "status": status or {}}


def test_service_cluster_ip() -> None:
    obj = service(
        {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            "selector": {"k8s-app": "kube-dns", "app": "dns"},
        }
    )
    assert row("/services", obj) == [
        "web",
        "ClusterIP",
        "10.96.0.10",
        "<none>",
        "53/UDP,53/TCP",
        "24h",
        "app=dns,k8s-app=kube-dns",
    ]


def test_service_node_port_and_defaults() -> None:
    obj = service(
        {"type": "NodePort", "clusterIP": "10.96.1.2", "ports": [{"port": 80, "nodePort": 30080}]}
    )
    got = cells("/services", obj)
    assert got["Cluster-IP"] == "10.96.1.2"
    assert got["Port(s)"] == "80:30080/TCP"
    assert got["Selector"] == "<none>"
    assert got["External-IP"] == "<none>"
    with_ext = service({"type": "ClusterIP", "externalIPs": ["1.2.3.4", "5.6.7.8"], "ports": []})
    got = cells("/services", with_ext)
    assert got["External-IP"] == "1.2.3.4,5.6.7.8"
    assert got["Port(s)"] == "<none>"
    assert got["Cluster-IP"] == "<none>"
    assert got["Type"] == "ClusterIP"


def test_service_headless_and_external_name() -> None:
    headless = service({"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432}]})
    assert cells("/services", headless)["Cluster-IP"] == "None"
    ext = service({"type": "ExternalName", "externalName": "db.example.com"})
    got = cells("/services", ext)
    assert got["External-IP"] == "db.example.com"
    assert got["Cluster-IP"] == "<none>"


def test_service_load_balancer() -> None:
    spec = {
        "type": "LoadBalancer",
        "clusterIPs": ["10.96.3.3"],
        "ports": [{"port": 443, "nodePort": 31443}],
    }
    assert cells("/services", service(spec))["External-IP"] == "<pending>"
    status = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}}
    assert cells("/services", service(spec, status))["External-IP"] == "203.0.113.9,lb.example.com"
    spec_ext = {**spec, "externalIPs": ["198.51.100.1"]}
    assert cells("/services", service(spec_ext, status))["External-IP"] == (
        "203.0.113.9,lb.example.com,198.51.100.1"
    )
    assert cells("/services", service(spec_ext))["External-IP"] == "198.51.100.1"


# ---------------------------------------------------------------------- endpoints


def test_endpoints_row() -> None:
    obj = {
        "metadata": meta("web", 60),
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "ports": [{"name": "http", "port": 8080}],
            }
        ],
    }
    assert row("/endpoints", obj) == ["web", "10.0.0.1:8080,10.0.0.2:8080", "60s"]


def test_endpoints_more_ipv6_and_empty() -> None:
    many = {
        "metadata": meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 4)],
                "ports": [{"port": 80}, {"port": 443}],
            },
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]},
        ],
    }
    assert cells("/endpoints", many)["Endpoints"] == (
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 4 more..."
    )
    v6 = {
        "metadata": meta("v6"),
        "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}],
    }
    assert cells("/endpoints", v6)["Endpoints"] == "[fd00::1]:80"
    portless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.1.1.1"}]}]}
    assert cells("/endpoints", portless)["Endpoints"] == "10.1.1.1"
    assert cells("/endpoints", {"metadata": meta("none")})["Endpoints"] == "<none>"
    not_ready = {
        "metadata": meta("nr"),
        "subsets": [{"notReadyAddresses": [{"ip": "10.2.2.2"}], "ports": [{"port": 80}]}],
    }
    assert cells("/endpoints", not_ready)["Endpoints"] == ""


def test_endpointslice_row() -> None:
    obj = {
        "metadata": meta("web-abc12", 30),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics"}, {}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
    }
    assert row("discovery.k8s.io/endpointslices", obj) == [
        "web-abc12",
        "IPv4",
        "80,metrics,*",
        "10.0.0.1,10.0.0.2",
        "30s",
    ]
    big = {
        "metadata": meta("big"),
        "addressType": "IPv4",
        "ports": [{"port": p} for p in (1, 2, 3, 4, 5)],
        "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(6)],
    }
    got = cells("discovery.k8s.io/endpointslices", big)
    assert got["Ports"] == "1,2,3 + 2 more..."
    assert got["Endpoints"] == "10.0.0.0,10.0.0.1,10.0.0.2 + 3 more..."
    empty = cells("discovery.k8s.io/endpointslices", {"metadata": meta("e"), "addressType": "IPv6"})
    assert empty["Ports"] == empty["Endpoints"] == "<unset>"


# ------------------------------------------------------ configmaps, secrets, SAs


def test_configmap_secret_serviceaccount_rows() -> None:
    cm = {"metadata": meta("cfg", 7200), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert row("/configmaps", cm) == ["cfg", 3, "120m"]
    assert row("/configmaps", {"metadata": meta("empty", 7200)}) == ["empty", 0, "120m"]
    secret = {
        "metadata": meta("tls", 86400 * 3),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "x", "tls.key": "y"},
    }
    assert row("/secrets", secret) == ["tls", "kubernetes.io/tls", 2, "3d"]
    sa = {"metadata": meta("default", 90), "secrets": [{"name": "default-token"}]}
    assert row("/serviceaccounts", sa) == ["default", 1, "90s"]
    assert row("/serviceaccounts", {"metadata": meta("bare", 90)}) == ["bare", 0, "90s"]


# ------------------------------------------------------------------------- events


def test_core_event_row() -> None:
    event = {
        "metadata": meta("web-1.17a3c", 400),
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container app\n",
        "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ts(400),
        "lastTimestamp": ts(45),
        "count": 7,
    }
    assert row("/events", event) == [
        "45s",
        "Warning",
        "BackOff",
        "pod/web-1",
        "spec.containers{app}",
        "kubelet, node-1",
        "Back-off restarting failed container app",
        "6m40s",
        7,
        "web-1.17a3c",
    ]


def test_event_fallbacks() -> None:
    event = {
        "metadata": meta("x.1"),
        "involvedObject": {"kind": "Node"},
        "reason": "Starting",
        "type": "Normal",
        "eventTime": "2026-11-30T11:58:00.123456Z",
        "reportingComponent": "cloudlet-scheduler",
        "reportingInstance": "",
    }
    got = cells("/events", event)
    assert got["Object"] == "node"
    assert got["Last Seen"] == got["First Seen"] == "119s"  # 119.88s, truncated
    assert got["Count"] == 1
    assert got["Source"] == "cloudlet-scheduler"
    series = {**event, "series": {"count": 12, "lastObservedTime": "2026-11-30T11:59:30.000000Z"}}
    got = cells("/events", series)
    assert got["Count"] == 12
    assert got["Last Seen"] == "30s"
    assert cells("/events", {"metadata": meta("y")})["Last Seen"] == "<unknown>"


def test_events_k8s_io_event_row() -> None:
    event = {
        "metadata": meta("web-1.17a3d"),
        "regarding": {"kind": "Pod", "name": "web-1"},
        "reason": "Scheduled",
        "note": "Successfully assigned default/web-1 to node-1",
        "type": "Normal",
        "eventTime": "2026-11-30T11:59:00.000000Z",
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-node-1",
        "action": "Binding",
    }
    assert row("events.k8s.io/events", event) == [
        "60s",
        "Normal",
        "Scheduled",
        "pod/web-1",
        "",
        "default-scheduler, default-scheduler-node-1",
        "Successfully assigned default/web-1 to node-1",
        "60s",
        1,
        "web-1.17a3d",
    ]
    # stored as core Events, served as events.k8s.io: either key prints either shape
    typed = {"apiVersion": "events.k8s.io/v1", "kind": "Event", **event}
    assert row("/events", typed) == row("events.k8s.io/events", event)
    legacy = {
        **typed,
        "deprecatedCount": 4,
        "deprecatedSource": {"component": "kubelet", "host": "node-1"},
        "deprecatedFirstTimestamp": ts(600),
        "deprecatedLastTimestamp": ts(20),
    }
    got = cells("events.k8s.io/events", legacy)
    assert (got["Count"], got["Source"], got["First Seen"], got["Last Seen"]) == (
        4,
        "kubelet, node-1",
        "10m",
        "20s",
    )


# -------------------------------------------------------------------- deployments


def template(*containers: tuple[str, str]) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": n, "image": i} for n, i in containers]}}


def test_deployment_row() -> None:
    obj = {
        "metadata": meta("web", 300),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "template": template(("nginx", "nginx:1.27"), ("log", "busybox")),
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert row("apps/deployments", obj) == [
        "web",
        "2/3",
        3,
        2,
        "5m",
        "nginx,log",
        "nginx:1.27,busybox",
        "app=web,!canary,tier in (edge,frontend)",
    ]


def test_deployment_defaults_and_selector_edge_cases() -> None:
    obj = {"metadata": meta("new"), "spec": {"template": template(("a", "img"))}}
    got = cells("apps/deployments", obj)
    assert got["Ready"] == "0/1"
    assert got["Up-to-date"] == 0 and got["Available"] == 0
    assert got["Selector"] == ""
    obj["spec"]["replicas"] = 0
    assert cells("apps/deployments", obj)["Ready"] == "0/0"
    obj["spec"]["selector"] = {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}
    assert cells("apps/deployments", obj)["Selector"] == "<invalid>"


def test_replicaset_row() -> None:
    obj = {
        "metadata": meta("web-5d9c7", 600),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d9c7"}},
            "template": template(("nginx", "nginx:1.27")),
        },
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert row("apps/replicasets", obj) == [
        "web-5d9c7",
        2,
        2,
        1,
        "10m",
        "nginx",
        "nginx:1.27",
        "app=web,pod-template-hash=5d9c7",
    ]
    bare = cells("apps/replicasets", {"metadata": meta("x")})
    assert bare["Selector"] == "<none>"
    assert bare["Current"] == 0 and bare["Ready"] == 0


# -------------------------------------------------------------------------- HPAs

HPA = "autoscaling/horizontalpodautoscalers"


def hpa(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    base = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 10,
    }
    return {"metadata": meta("web", 900), "spec": {**base, **spec}, "status": status or {}}


def test_hpa_v1_shapes() -> None:
    obj = hpa(
        {"targetCPUUtilizationPercentage": 80},
        {"currentReplicas": 3, "currentCPUUtilizationPercentage": 50},
    )
    assert row(HPA, obj) == ["web", "Deployment/web", "cpu: 50%/80%", "2", 10, 3, "15m"]
    pending = hpa({"targetCPUUtilizationPercentage": 60})
    assert cells(HPA, pending)["Targets"] == "cpu: <unknown>/60%"
    defaulted = hpa({"minReplicas": None})
    got = cells(HPA, defaulted)
    assert got["Targets"] == "cpu: <unknown>/80%"
    assert got["MinPods"] == "1"
    assert got["Replicas"] == 0


def test_hpa_v2_metrics() -> None:
    cpu = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
    memory = {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512Mi"}},
    }
    pods = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "rps"},
            "target": {"type": "AverageValue", "averageValue": "100"},
        },
    }
    obj = hpa(
        {"metrics": [cpu]},
        {
            "currentReplicas": 2,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": 50, "averageValue": "250m"},
                    },
                },
            ],
        },
    )
    assert cells(HPA, obj)["Targets"] == "cpu: 50%/80%"
    assert cells(HPA, hpa({"metrics": [cpu]}))["Targets"] == "cpu: <unknown>/80%"
    both = hpa(
        {"metrics": [cpu, memory]},
        {
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 12}},
                },
                {
                    "type": "Resource",
                    "resource": {"name": "memory", "current": {"averageValue": "300Mi"}},
                },
            ]
        },
    )
    assert cells(HPA, both)["Targets"] == "cpu: 12%/80%, memory: 300Mi/512Mi"
    three = hpa({"metrics": [cpu, memory, pods]})
    assert cells(HPA, three)["Targets"] == (
        "cpu: <unknown>/80%, memory: <unknown>/512Mi + 1 more..."
    )
    assert (
        cells(
            HPA,
            hpa(
                {"metrics": [pods]},
                {
                    "currentMetrics": [
                        {
                            "type": "Pods",
                            "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "42"}},
                        },
                    ]
                },
            ),
        )["Targets"]
        == "42/100"
    )


def test_hpa_v2_object_external_container_metrics() -> None:
    obj_avg = {
        "type": "Object",
        "object": {
            "metric": {"name": "q"},
            "describedObject": {},
            "target": {"type": "AverageValue", "averageValue": "30"},
        },
    }
    obj_val = {
        "type": "Object",
        "object": {
            "metric": {"name": "q"},
            "describedObject": {},
            "target": {"type": "Value", "value": "5"},
        },
    }
    ext = {
        "type": "External",
        "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "1k"}},
    }
    container = {
        "type": "ContainerResource",
        "containerResource": {
            "name": "cpu",
            "container": "app",
            "target": {"type": "Utilization", "averageUtilization": 70},
        },
    }
    assert cells(HPA, hpa({"metrics": [obj_avg]}))["Targets"] == "<unknown>/30 (avg)"
    assert (
        cells(
            HPA,
            hpa(
                {"metrics": [obj_val]},
                {"currentMetrics": [{"type": "Object", "object": {"current": {"value": "4"}}}]},
            ),
        )["Targets"]
        == "4/5"
    )
    assert cells(HPA, hpa({"metrics": [ext]}))["Targets"] == "<unknown>/1k"
    assert (
        cells(
            HPA,
            hpa(
                {"metrics": [container]},
                {
                    "currentMetrics": [
                        {
                            "type": "ContainerResource",
                            "containerResource": {
                                "name": "cpu",
                                "container": "app",
                                "current": {"averageUtilization": 33},
                            },
                        }
                    ]
                },
            ),
        )["Targets"]
        == "cpu: 33%/70%"
    )
    assert cells(HPA, hpa({"metrics": [{"type": "Mystery"}]}))["Targets"] == "<unknown type>"


# --------------------------------------------------------- cluster-scoped classes


def test_priorityclass_row() -> None:
    obj = {
        "metadata": meta("high", 86400 * 10),
        "value": 1000000,
        "globalDefault": False,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": "important",
    }
    assert row("scheduling.k8s.io/priorityclasses", obj) == [
        "high",
        1000000,
        False,
        "10d",
        "PreemptLowerPriority",
    ]
    default = {"metadata": meta("normal"), "value": 0, "globalDefault": True}
    got = cells("scheduling.k8s.io/priorityclasses", default)
    assert got["Global-Default"] is True
    assert got["PreemptionPolicy"] == ""


def test_runtimeclass_and_lease_rows() -> None:
    rc = {"metadata": meta("microvm", 45), "handler": "qemu"}
    assert row("node.k8s.io/runtimeclasses", rc) == ["microvm", "qemu", "45s"]
    lease = {
        "metadata": meta("node-1", 86400 * 2),
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40},
    }
    assert row("coordination.k8s.io/leases", lease) == ["node-1", "node-1", "2d"]
    assert row("coordination.k8s.io/leases", {"metadata": meta("free", 5)}) == ["free", "", "5s"]


# ---------------------------------------------------------------- serialisation


def test_sample_rows_are_json_serialisable() -> None:
    samples = {
        "/pods": pod([running()]),
        "/nodes": node(),
        "apps/deployments": {"metadata": meta("d"), "spec": {"replicas": 1}},
        HPA: hpa({"targetCPUUtilizationPercentage": 50}),
    }
    for key, obj in samples.items():
        values = row(key, obj)
        assert json.loads(json.dumps(values)) == values
