"""JSON type checks for the built-in kinds (what Go's strict decoding would reject).

Kubernetes decodes a request into typed Go structs, so ``ports: "80"`` never
reaches validation: it fails with a decode error. Objects here are plain dicts,
so each kind's validator first runs :func:`check_types` against a compact
schema of the fields it knows; any mismatch is reported (and nothing else, as
with a decode failure). Unknown fields are not checked.
"""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import invalid_value
from cloudlet.resources._util import Errors, Obj, Validator, child, index, key

# A schema is a type name, ("array", item), ("map", value) or a dict of fields.
Schema = Any
S, INT, B, N = "string", "integer", "boolean", "number"
IS = "intstr"  # IntOrString
Q = "quantity"  # resource.Quantity: string or number
ANY, OBJ = "any", "object"


def arr(item: Schema) -> Schema:
    return ("array", item)


def mapof(value: Schema) -> Schema:
    return ("map", value)


_NAMES = {S: "string", INT: "integer", B: "boolean", N: "number", IS: "integer or string", Q: "string or number", OBJ: "object"}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == S:
        return isinstance(value, str)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == B:
        return isinstance(value, bool)
    if kind in (N, Q):
        return isinstance(value, int | float | str) and not isinstance(value, bool) and (kind == Q or not isinstance(value, str))
    if kind == IS:
        return isinstance(value, int | str) and not isinstance(value, bool)
    if kind == OBJ:
        return isinstance(value, dict)
    return True


def check_types(value: Any, schema: Schema, path: str) -> Errors:
    """Errors for values whose JSON type does not match ``schema`` (``null`` is always fine)."""
    if value is None or schema == ANY:
        return []
    if isinstance(schema, str):
        return [] if _type_ok(value, schema) else [invalid_value(path, value, f"must be of type {_NAMES[schema]}")]
    if isinstance(schema, tuple):
        container, item = schema
        if container == "array":
            if not isinstance(value, list):
                return [invalid_value(path, value, "must be of type array")]
            errs: Errors = []
            for i, element in enumerate(value):
                errs += check_types(element, item, index(path, i))
            return errs
        if not isinstance(value, dict):
            return [invalid_value(path, value, "must be of type object")]
        errs = []
        for k, element in value.items():
            errs += check_types(element, item, key(path, k))
        return errs
    if not isinstance(value, dict):
        return [invalid_value(path, value, "must be of type object")]
    errs = []
    for name, sub in schema.items():
        if name in value:
            errs += check_types(value[name], sub, child(path, name))
    return errs


# --- shared shapes ----------------------------------------------------------------------

STRINGS = arr(S)
STRING_MAP = mapof(S)
RESOURCE_LIST = mapof(Q)
OWNER_REF = {"apiVersion": S, "kind": S, "name": S, "uid": S, "controller": B, "blockOwnerDeletion": B}
METADATA = {
    "name": S, "generateName": S, "namespace": S, "uid": S, "resourceVersion": S, "generation": INT,
    "labels": STRING_MAP, "annotations": STRING_MAP, "finalizers": STRINGS, "ownerReferences": arr(OWNER_REF),
    "creationTimestamp": S, "deletionTimestamp": S, "deletionGracePeriodSeconds": INT, "managedFields": arr(OBJ),
}
LABEL_SELECTOR = {"matchLabels": STRING_MAP, "matchExpressions": arr({"key": S, "operator": S, "values": STRINGS})}
KEY_TO_PATH = arr({"key": S, "path": S, "mode": INT})
HANDLER = {
    "exec": {"command": STRINGS},
    "httpGet": {"path": S, "port": IS, "host": S, "scheme": S, "httpHeaders": arr({"name": S, "value": S})},
    "tcpSocket": {"port": IS, "host": S},
    "grpc": {"port": INT, "service": S},
    "sleep": {"seconds": INT},
}
PROBE = {**HANDLER, "initialDelaySeconds": INT, "timeoutSeconds": INT, "periodSeconds": INT, "successThreshold": INT,
         "failureThreshold": INT, "terminationGracePeriodSeconds": INT}
SECURITY_CONTEXT = {
    "runAsUser": INT, "runAsGroup": INT, "runAsNonRoot": B, "privileged": B, "readOnlyRootFilesystem": B,
    "allowPrivilegeEscalation": B, "procMount": S, "capabilities": {"add": STRINGS, "drop": STRINGS},
    "seccompProfile": {"type": S, "localhostProfile": S}, "appArmorProfile": {"type": S, "localhostProfile": S},
}
CONTAINER = {
    "name": S, "image": S, "command": STRINGS, "args": STRINGS, "workingDir": S,
    "ports": arr({"name": S, "containerPort": INT, "hostPort": INT, "protocol": S, "hostIP": S}),
    "env": arr({"name": S, "value": S, "valueFrom": {
        "fieldRef": {"apiVersion": S, "fieldPath": S}, "resourceFieldRef": {"containerName": S, "resource": S, "divisor": Q},
        "configMapKeyRef": {"name": S, "key": S, "optional": B}, "secretKeyRef": {"name": S, "key": S, "optional": B}}}),
    "envFrom": arr({"prefix": S, "configMapRef": {"name": S, "optional": B}, "secretRef": {"name": S, "optional": B}}),
    "resources": {"limits": RESOURCE_LIST, "requests": RESOURCE_LIST, "claims": arr({"name": S, "request": S})},
    "resizePolicy": arr({"resourceName": S, "restartPolicy": S}),
    "volumeMounts": arr({"name": S, "mountPath": S, "subPath": S, "subPathExpr": S, "readOnly": B,
                         "mountPropagation": S, "recursiveReadOnly": S}),
    "volumeDevices": arr({"name": S, "devicePath": S}),
    "livenessProbe": PROBE, "readinessProbe": PROBE, "startupProbe": PROBE,
    "lifecycle": {"postStart": HANDLER, "preStop": HANDLER, "stopSignal": S},
    "terminationMessagePath": S, "terminationMessagePolicy": S, "imagePullPolicy": S, "restartPolicy": S,
    "securityContext": SECURITY_CONTEXT, "stdin": B, "stdinOnce": B, "tty": B, "targetContainerName": S,
}
VOLUME = {
    "name": S,
    "emptyDir": {"medium": S, "sizeLimit": Q},
    "hostPath": {"path": S, "type": S},
    "secret": {"secretName": S, "items": KEY_TO_PATH, "defaultMode": INT, "optional": B},
    "configMap": {"name": S, "items": KEY_TO_PATH, "defaultMode": INT, "optional": B},
    "persistentVolumeClaim": {"claimName": S, "readOnly": B},
    "nfs": {"server": S, "path": S, "readOnly": B},
    "downwardAPI": {"items": arr(OBJ), "defaultMode": INT},
    "projected": {"sources": arr(OBJ), "defaultMode": INT},
    "csi": {"driver": S, "readOnly": B, "fsType": S, "volumeAttributes": STRING_MAP},
    "image": {"reference": S, "pullPolicy": S},
    **{name: OBJ for name in ("gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "iscsi", "glusterfs", "flocker",
                              "rbd", "cinder", "cephfs", "quobyte", "fc", "flexVolume", "azureFile", "vsphereVolume",
                              "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "scaleIO", "ephemeral")},
}
TOLERATION = {"key": S, "operator": S, "value": S, "effect": S, "tolerationSeconds": INT}
POD_SPEC = {
    "containers": arr(CONTAINER), "initContainers": arr(CONTAINER), "ephemeralContainers": arr(CONTAINER),
    "volumes": arr(VOLUME), "restartPolicy": S, "terminationGracePeriodSeconds": INT, "activeDeadlineSeconds": INT,
    "dnsPolicy": S, "nodeSelector": STRING_MAP, "serviceAccountName": S, "serviceAccount": S,
    "automountServiceAccountToken": B, "nodeName": S, "hostNetwork": B, "hostPID": B, "hostIPC": B,
    "shareProcessNamespace": B, "hostUsers": B, "securityContext": {
        "runAsUser": INT, "runAsGroup": INT, "runAsNonRoot": B, "fsGroup": INT, "supplementalGroups": arr(INT),
        "sysctls": arr({"name": S, "value": S}), "fsGroupChangePolicy": S, "seccompProfile": OBJ},
    "imagePullSecrets": arr({"name": S}), "hostname": S, "subdomain": S, "setHostnameAsFQDN": B,
    "affinity": {"nodeAffinity": OBJ, "podAffinity": OBJ, "podAntiAffinity": OBJ},
    "schedulerName": S, "tolerations": arr(TOLERATION), "hostAliases": arr({"ip": S, "hostnames": STRINGS}),
    "priorityClassName": S, "priority": INT, "preemptionPolicy": S,
    "dnsConfig": {"nameservers": STRINGS, "searches": STRINGS, "options": arr({"name": S, "value": S})},
    "readinessGates": arr({"conditionType": S}), "runtimeClassName": S, "enableServiceLinks": B,
    "overhead": RESOURCE_LIST, "topologySpreadConstraints": arr({"maxSkew": INT, "topologyKey": S,
                                                                 "whenUnsatisfiable": S, "labelSelector": LABEL_SELECTOR,
                                                                 "minDomains": INT, "matchLabelKeys": STRINGS}),
    "os": {"name": S}, "schedulingGates": arr({"name": S}), "resourceClaims": arr(OBJ),
    "resources": {"limits": RESOURCE_LIST, "requests": RESOURCE_LIST},
}
POD_TEMPLATE = {"metadata": METADATA, "spec": POD_SPEC}


def kind_schema(**fields: Schema) -> Schema:
    """A top-level object: apiVersion, kind, metadata, plus the kind's fields."""
    return {"apiVersion": S, "kind": S, "metadata": METADATA, **fields}


def type_errors(obj: Any, schema: Schema) -> Errors:
    if not isinstance(obj, dict):
        return [invalid_value("", obj, "must be of type object")]
    return check_types(obj, schema, "")


def with_types(schema: Schema, validate: Validator) -> Validator:
    """Wrap a kind validator: type errors first, and alone (like a decode failure)."""

    def checked(obj: Obj, old: Obj | None) -> Errors:
        errs = type_errors(obj, schema)
        return errs if errs else validate(obj, old)

    checked.__name__ = getattr(validate, "__name__", "validate")
    checked.__doc__ = validate.__doc__
    return checked
