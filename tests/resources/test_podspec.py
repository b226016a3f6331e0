"""PodSpec defaulting and validation (shared by Pods and workload templates)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cloudlet.resources.containers import default_pull_policy
from cloudlet.resources.podspec import default_pod_spec, pod_qos_class, validate_pod_spec

from ._helpers import check, defaulted, kind, messages

PODS = kind("", "v1", "pods")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": base}


def ctr(**fields: Any) -> dict[str, Any]:
    return {"name": "app", "image": "nginx:1.25", **fields}


# --- defaults ------------------------------------------------------------------------


def test_pod_spec_defaults() -> None:
    spec = defaulted(PODS, pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    c = spec["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["resources"] == {}


def test_template_specs_do_not_get_pod_only_defaults() -> None:
    spec: dict[str, Any] = {"containers": [ctr(resources={"limits": {"cpu": "1"}})]}
    default_pod_spec(spec)
    assert "enableServiceLinks" not in spec
    assert "requests" not in spec["containers"][0]["resources"]


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("docker.io/library/nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("localhost:5000/app", "Always"), ("registry.local:5000/team/app:v1", "IfNotPresent"),
    ("NotAValidReference", "IfNotPresent"),
])
def test_image_pull_policy_default(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


def test_container_part_defaults() -> None:
    probe = {"httpGet": {"port": 8080}}
    spec = defaulted(PODS, pod(containers=[ctr(
        ports=[{"containerPort": 80}], livenessProbe=probe, readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5},
        resources={"limits": {"cpu": "0.5", "memory": "1.5Gi"}},
        env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    )]))["spec"]
    c = spec["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["livenessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["resources"] == {"limits": {"cpu": "500m", "memory": "1536Mi"}, "requests": {"cpu": "500m", "memory": "1536Mi"}}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_volume_defaults() -> None:
    volumes = [{"name": "a", "configMap": {"name": "cm"}}, {"name": "b", "secret": {"secretName": "s"}},
               {"name": "c"}, {"name": "d", "hostPath": {"path": "/data"}},
               {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
    spec = defaulted(PODS, pod(volumes=volumes))["spec"]
    assert spec["volumes"][0]["configMap"]["defaultMode"] == 420
    assert spec["volumes"][1]["secret"]["defaultMode"] == 420
    assert spec["volumes"][2] == {"name": "c", "emptyDir": {}}
    assert spec["volumes"][3]["hostPath"]["type"] == ""
    assert spec["volumes"][4]["projected"]["defaultMode"] == 420
    assert spec["volumes"][4]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600


def test_host_network_defaults_host_ports_for_pods() -> None:
    spec = defaulted(PODS, pod(hostNetwork=True, containers=[ctr(ports=[{"containerPort": 8080}])]))["spec"]
    assert spec["containers"][0]["ports"][0]["hostPort"] == 8080


def test_defaulting_is_idempotent() -> None:
    once = defaulted(PODS, pod(volumes=[{"name": "v"}], containers=[ctr(livenessProbe={"exec": {"command": ["true"]}})]))
    assert defaulted(PODS, once) == once


def test_new_pod_status_and_qos() -> None:
    assert defaulted(PODS, pod())["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    burstable = pod(containers=[ctr(resources={"requests": {"cpu": "100m"}})])
    assert defaulted(PODS, burstable)["status"]["qosClass"] == "Burstable"
    guaranteed = defaulted(PODS, pod(containers=[ctr(resources={"limits": {"cpu": "1", "memory": "1Gi"}})]))
    assert pod_qos_class(guaranteed["spec"]) == "Guaranteed"


# --- validation -----------------------------------------------------------------------


def test_valid_pod() -> None:
    assert check(PODS, pod()) == []


def test_containers_required() -> None:
    assert check(PODS, pod(containers=[])) == ["spec.containers: Required value"]


def test_container_names_unique_across_init_containers() -> None:
    obj = pod(containers=[ctr(), ctr()], initContainers=[ctr()])
    assert check(PODS, obj) == [
        'spec.containers[1].name: Duplicate value: "app"',
        'spec.initContainers[0].name: Duplicate value: "app"',
    ]


def test_container_name_and_image() -> None:
    assert check(PODS, pod(containers=[{"name": "App_1", "image": ""}])) == [
        'spec.containers[0].name: Invalid value: "App_1": a lowercase RFC 1123 label must consist of lower '
        "case alphanumeric characters or '-', and must start and end with an alphanumeric character "
        "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "spec.containers[0].image: Required value",
    ]


def test_ports() -> None:
    ports = [{"containerPort": 70000, "name": "web"}, {"containerPort": 80, "name": "web", "protocol": "HTTP"},
             {"name": "8080"}]
    assert check(PODS, pod(containers=[ctr(ports=ports)])) == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[1].name: Duplicate value: "web"',
        'spec.containers[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        'spec.containers[0].ports[2].name: Invalid value: "8080": must contain at least one letter (a-z)',
        "spec.containers[0].ports[2].containerPort: Required value",
    ]


def test_env() -> None:
    env = [{"name": "A=B", "value": "x"}, {"value": "y"},
           {"name": "C", "value": "z", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
           {"name": "D", "valueFrom": {}}]
    assert check(PODS, pod(containers=[ctr(env=env)])) == [
        'spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must '
        "consist only of printable ASCII characters other than '='",
        "spec.containers[0].env[1].name: Required value",
        'spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
        'spec.containers[0].env[3].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
        "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
    ]


def test_resources() -> None:
    resources = {"limits": {"cpu": "1"}, "requests": {"cpu": "2", "memory": "lots", "example.com/gpu": "0.5"}}
    assert check(PODS, pod(containers=[ctr(resources=resources)])) == [
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
        'spec.containers[0].resources.requests[memory]: Invalid value: "lots": quantities must match the '
        "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        'spec.containers[0].resources.requests[example.com/gpu]: Invalid value: "500m": must be an integer',
        "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
    ]


def test_resource_names() -> None:
    # Pods copy limits into requests while defaulting, so both report the bad name.
    assert check(PODS, pod(containers=[ctr(resources={"limits": {"pods": "1"}})])) == [
        'spec.containers[0].resources.limits[pods]: Invalid value: "pods": must be a standard resource for containers',
        'spec.containers[0].resources.requests[pods]: Invalid value: "pods": must be a standard resource for containers',
    ]
    assert check(PODS, pod(containers=[ctr(resources={"requests": {"foo": "1"}})])) == [
        'spec.containers[0].resources.requests[foo]: Invalid value: "foo": must be a standard resource type or fully qualified',
        'spec.containers[0].resources.requests[foo]: Invalid value: "foo": must be a standard resource for containers',
    ]
    assert check(PODS, pod(containers=[ctr(resources={"requests": {"cpu": "-1"}})])) == [
        'spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0',
    ]


def test_pod_level_enums() -> None:
    assert check(PODS, pod(restartPolicy="Sometimes", dnsPolicy="Custom")) == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        'spec.dnsPolicy: Unsupported value: "Custom": supported values: "ClusterFirstWithHostNet", '
        '"ClusterFirst", "Default", "None"',
    ]


def test_volumes() -> None:
    volumes = [{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}, {"name": "cfg", "configMap": {"name": "c"}},
               {"name": "cfg", "secret": {"secretName": "s", "defaultMode": 1000}}]
    mounts = [{"name": "data", "mountPath": "/data"}, {"name": "missing", "mountPath": "/m"}]
    assert check(PODS, pod(volumes=volumes, containers=[ctr(volumeMounts=mounts)])) == [
        "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
        "spec.volumes[2].secret.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
        'spec.volumes[2].name: Duplicate value: "cfg"',
        'spec.containers[0].volumeMounts[0].name: Not found: "data"',
        'spec.containers[0].volumeMounts[1].name: Not found: "missing"',
    ]


def test_probes() -> None:
    bad = {"httpGet": {"port": 0}, "successThreshold": 2, "periodSeconds": -1}
    assert check(PODS, pod(containers=[ctr(livenessProbe=bad, readinessProbe={})])) == [
        "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
    ]


def test_tolerations() -> None:
    tolerations = [{"key": "k", "operator": "Sometimes"}, {"operator": "Equal", "value": "v"},
                   {"key": "k", "operator": "Exists", "effect": "Never"},
                   {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]
    assert check(PODS, pod(tolerations=tolerations)) == [
        'spec.tolerations[0].operator: Unsupported value: "Sometimes": supported values: "Equal", "Exists"',
        'spec.tolerations[1].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, '
        'which means "match all values and all keys"',
        'spec.tolerations[2].effect: Unsupported value: "Never": supported values: "NoSchedule", '
        '"PreferNoSchedule", "NoExecute"',
        "spec.tolerations[3].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
        "`tolerationSeconds` is set",
    ]


def test_names_of_referenced_objects() -> None:
    assert check(PODS, pod(priorityClassName="High_Prio", runtimeClassName="Kata", nodeSelector={"disk": "-ssd"})) == [
        'spec.nodeSelector: Invalid value: "-ssd": a valid label must be an empty string or consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        f'spec.priorityClassName: Invalid value: "High_Prio": {SUBDOMAIN_MSG}',
        f'spec.runtimeClassName: Invalid value: "Kata": {SUBDOMAIN_MSG}',
    ]


def test_affinity_and_spread() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 0, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}}}]}}
    spread = [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]
    errs = check(PODS, pod(affinity=affinity, topologySpreadConstraints=spread))
    # an empty topologyKey is also reported as a bad label name (two messages), as in Kubernetes
    assert [e for e in errs if "name part" not in e] == [
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: "
        "Required value: must have at least one node selector term",
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
        "Invalid value: 0: must be in the range 1-100",
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm."
        "topologyKey: Required value: can not be empty",
        "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
        'spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": supported values: '
        '"DoNotSchedule", "ScheduleAnyway"',
    ]


def test_wrong_types_are_reported_not_raised() -> None:
    for spec in ({"containers": "nginx"}, {"containers": [None, 3]}, {"containers": [{"name": 3, "image": ["x"]}]},
                 {"containers": [ctr(ports="80", env={"A": 1}, resources=[])], "volumes": {"a": 1}},
                 {"terminationGracePeriodSeconds": "30", "tolerations": [{"tolerationSeconds": 1.5}]}):
        obj = pod(**spec)
        PODS.default(obj)
        assert PODS.validate(obj, None)
    obj = pod(containers=[ctr(ports="80", resources=[])], volumes={"a": 1})
    assert check(PODS, obj) == [
        'spec.containers[0].ports: Invalid value: "80": must be of type array',
        "spec.containers[0].resources: Invalid value: []: must be of type object",
        'spec.volumes: Invalid value: {"a":1}: must be of type array',
    ]
    assert messages(validate_pod_spec(None)) == ["spec.containers: Required value"]
    spec_list = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"}, "spec": []}
    PODS.default(spec_list)
    assert spec_list["spec"] == []  # defaulting never "repairs" a wrong type
    assert check(PODS, spec_list) == ["spec: Invalid value: []: must be of type object"]


# --- updates ------------------------------------------------------------------------------


def updated(old: dict[str, Any], **spec: Any) -> dict[str, Any]:
    new = copy.deepcopy(old)
    new["spec"].update(spec)
    return new


def test_pod_update_allows_images_deadline_and_added_tolerations() -> None:
    old = defaulted(PODS, pod(tolerations=[{"key": "a", "operator": "Exists"}]))
    new = updated(old, activeDeadlineSeconds=30,
                  tolerations=[{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}])
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert PODS.validate(defaulted(PODS, new), old) == []


def test_pod_update_forbids_other_spec_changes() -> None:
    old = defaulted(PODS, pod())
    errs = PODS.validate(defaulted(PODS, updated(old, restartPolicy="Never")), old)
    assert len(errs) == 1
    assert errs[0].field == "spec"
    assert errs[0].type == "Forbidden"
    assert str(errs[0]).startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
        "previously negative)\n"
    )
    assert 'spec.restartPolicy: "Never"' in errs[0].detail


def test_pod_update_container_count_and_tolerations() -> None:
    old = defaulted(PODS, pod(tolerations=[{"key": "a", "operator": "Exists"}]))
    more = updated(old, containers=old["spec"]["containers"] + [ctr(name="b")])
    assert messages(PODS.validate(defaulted(PODS, more), old)) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    ]
    changed = updated(old, tolerations=[{"key": "a", "operator": "Exists", "effect": "NoSchedule"}])
    assert messages(PODS.validate(defaulted(PODS, changed), old)) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    ]


def test_pod_update_active_deadline() -> None:
    old = defaulted(PODS, pod(activeDeadlineSeconds=10))
    assert messages(PODS.validate(defaulted(PODS, updated(old, activeDeadlineSeconds=20)), old)) == [
        "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"
    ]
    removed = copy.deepcopy(old)
    del removed["spec"]["activeDeadlineSeconds"]
    assert messages(PODS.validate(defaulted(PODS, removed), old)) == [
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
    ]


def test_pod_create_only_rules() -> None:
    obj = pod(ephemeralContainers=[{"name": "dbg", "image": "busybox"}])
    assert "spec.ephemeralContainers: Forbidden: cannot be set on create" in check(PODS, obj)
    gated = pod(nodeName="node-1", schedulingGates=[{"name": "example.com/wait"}])
    assert check(PODS, gated) == ["spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"]


def test_pod_fields() -> None:
    obj = defaulted(PODS, pod(nodeName="n1", serviceAccountName="sa", hostNetwork=True))
    obj["status"]["podIPs"] = [{"ip": "10.0.0.5"}]
    assert PODS.fields(obj) == {
        "spec.nodeName": "n1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "sa", "spec.hostNetwork": "true", "status.phase": "Pending",
        "status.podIP": "10.0.0.5", "status.nominatedNodeName": "",
    }
