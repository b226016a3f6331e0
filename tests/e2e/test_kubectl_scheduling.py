"""The real kubectl against a real cloudlet: the scheduler places, repels and explains."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import CloudletProcess, wait_until

NODES = """
apiVersion: v1
kind: Node
metadata: {name: small, labels: {kubernetes.io/hostname: small}}
status:
  capacity: {cpu: "1", memory: 2Gi, pods: "10"}
  allocatable: {cpu: "1", memory: 2Gi, pods: "10"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Node
metadata: {name: gpu-a, labels: {kubernetes.io/hostname: gpu-a, accel: gpu}}
spec:
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
status:
  capacity: {cpu: "8", memory: 16Gi, pods: "10"}
  allocatable: {cpu: "8", memory: 16Gi, pods: "10"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Node
metadata: {name: gpu-b, labels: {kubernetes.io/hostname: gpu-b, accel: gpu}}
spec:
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
status:
  capacity: {cpu: "8", memory: 16Gi, pods: "10"}
  allocatable: {cpu: "8", memory: 16Gi, pods: "10"}
  conditions: [{type: Ready, status: "True"}]
"""

PODS = """
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers: [{name: c, image: busybox:1.36, resources: {requests: {cpu: "2"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: trainer}
spec:
  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]
  nodeSelector: {accel: gpu}
  containers: [{name: c, image: busybox:1.36, resources: {requests: {cpu: "2"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: tiny}
spec:
  containers: [{name: c, image: busybox:1.36, resources: {requests: {cpu: 100m}}}]
"""


@pytest.fixture(scope="module")
def cloudlet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    # hand-made nodes have no heartbeat: keep the node lifecycle controller from tainting them meanwhile
    proc = CloudletProcess(tmp_path_factory.mktemp("cloudlet-sched"), extra_args=["--node-monitor-grace-period", "600"])
    proc.start()
    yield proc
    proc.stop()


def node_of(cloudlet: CloudletProcess, pod: str) -> str:
    return cloudlet.kubectl("get", "pod", pod, "-o", "jsonpath={.spec.nodeName}").stdout.strip()


def test_place_repel_attract_and_explain(cloudlet: CloudletProcess) -> None:
    cloudlet.kubectl("apply", "-f", "-", input=NODES)
    cloudlet.kubectl("apply", "-f", "-", input=PODS)
    wait_until(lambda: node_of(cloudlet, "tiny"), what="tiny bound")
    assert node_of(cloudlet, "tiny") == "small"
    wait_until(lambda: node_of(cloudlet, "trainer"), what="trainer bound")
    assert node_of(cloudlet, "trainer") in ("gpu-a", "gpu-b")
    expected = ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}. "
                "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
                "2 Preemption is not helpful for scheduling.")
    wait_until(lambda: expected in cloudlet.kubectl("describe", "pod", "big").stdout, what="FailedScheduling event")
    out = cloudlet.kubectl("get", "pod", "big", "-o",
                           "jsonpath={.status.conditions[?(@.type=='PodScheduled')].reason}").stdout
    assert out == "Unschedulable"
    assert node_of(cloudlet, "big") == ""
    # removing the taint makes room: the scheduler retries on the node update
    cloudlet.kubectl("taint", "node", "gpu-b", "dedicated=gpu:NoSchedule-")
    wait_until(lambda: node_of(cloudlet, "big"), what="big bound after untaint")
    assert node_of(cloudlet, "big") == "gpu-b"


def test_binding_conflict_via_kubectl(cloudlet: CloudletProcess) -> None:
    body = '{"apiVersion":"v1","kind":"Binding","metadata":{"name":"tiny"},"target":{"kind":"Node","name":"gpu-a"}}'
    p = cloudlet.kubectl("create", "--raw", "/api/v1/namespaces/default/pods/tiny/binding", "-f", "-",
                         input=body, check=False)
    assert p.returncode != 0
    assert 'pod tiny is already assigned to node "small"' in p.stderr


PREEMPTION = """
apiVersion: v1
kind: Node
metadata: {name: prio-node, labels: {kubernetes.io/hostname: prio-node, pool: prio}}
spec:
  taints: [{key: pool, value: prio, effect: NoSchedule}]
status:
  capacity: {cpu: "2", memory: 4Gi, pods: "10"}
  allocatable: {cpu: "2", memory: 4Gi, pods: "10"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
"""


def prio_pod(name: str, klass: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  priorityClassName: {klass}
  nodeSelector: {{pool: prio}}
  tolerations: [{{key: pool, operator: Exists}}]
  containers: [{{name: c, image: busybox:1.36, resources: {{requests: {{cpu: "2"}}}}}}]
"""


def test_high_priority_preempts_low(cloudlet: CloudletProcess) -> None:
    cloudlet.kubectl("apply", "-f", "-", input=PREEMPTION)
    cloudlet.kubectl("apply", "-f", "-", input=prio_pod("batch", "low"))
    wait_until(lambda: node_of(cloudlet, "batch") == "prio-node", what="batch bound")
    cloudlet.kubectl("apply", "-f", "-", input=prio_pod("urgent", "high"))

    def batch_terminating() -> bool:
        out = cloudlet.kubectl("get", "pod", "batch", "-o", "jsonpath={.metadata.deletionTimestamp}", check=False)
        return out.returncode != 0 or bool(out.stdout.strip())

    wait_until(batch_terminating, what="victim deleted")
    wait_until(lambda: cloudlet.kubectl("get", "pod", "urgent", "-o",
                                        "jsonpath={.status.nominatedNodeName}").stdout == "prio-node",
               what="urgent nominated")
    cloudlet.kubectl("delete", "pod", "batch", "--force", "--grace-period=0", "--ignore-not-found", check=False)
    wait_until(lambda: node_of(cloudlet, "urgent") == "prio-node", what="urgent bound")
    wait_until(lambda: "Preempted" in cloudlet.kubectl("get", "events", "--field-selector",
                                                       "involvedObject.name=batch").stdout, what="Preempted event")
