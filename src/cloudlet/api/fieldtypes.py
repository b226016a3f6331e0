"""Structural types for field management: what server-side apply merges how.

Server-side apply and ``managedFields`` need to know, for every place in an
object, whether it is a scalar, a struct (named fields), a map (arbitrary
keys), or a list, and how lists and maps merge (Kubernetes' structured merge
diff "atoms"):

* lists are ``atomic`` (replaced and owned whole), ``set`` (primitive items,
  owned one by one, path element ``v:<value>``) or ``map`` (items identified
  by key fields, path element ``k:{"name":"c"}``);
* maps and structs are granular (keys owned one by one) unless ``atomic``.

Sources, by kind:

* built-in kinds: the Go field tables of :mod:`cloudlet.api.protobuf_schema`
  (which field is a struct, map, list or scalar) joined with the list and
  struct markers of k8s.io/api (``+listType``, ``+listMapKey``,
  ``+structType=atomic``, ``+mapType=atomic``; a list without ``+listType``
  but with ``patchStrategy:"merge"`` is a map keyed by its ``patchMergeKey``,
  or a set without one), tabled below;
* custom resources: the version's ``openAPIV3Schema``
  (``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``,
  ``x-kubernetes-map-type``, ``x-kubernetes-preserve-unknown-fields``);
* anything else (and unknown fields): deduced from the value, as Kubernetes
  does for schemaless data: dicts are granular maps, lists are atomic.

``metadata`` is always ``ObjectMeta`` (labels and annotations granular,
``finalizers`` a set, ``ownerReferences`` a map keyed by ``uid``).

Contract: :class:`Atom` trees are immutable once built and shared between
requests; :func:`root_atom` caches per kind (per schema dict for custom
resources).
"""

from __future__ import annotations

from typing import Any

from cloudlet.api import protobuf
from cloudlet.api.protobuf_schema import KINDS

SCALAR = 0
MAP = 1
LIST = 2
UNTYPED = 3  # deduced from the value


class Atom:
    """One node of a structural type.

    ``kind`` is SCALAR, MAP, LIST or UNTYPED. A MAP has ``fields`` (declared
    struct fields; empty for a plain map) and ``elem`` (the type of any other
    key; None means "deduced"). A LIST has ``elem``; ``keys`` names the key
    fields of a map-list (empty for a set); ``atomic`` applies to lists and
    maps. ``key_defaults`` fills absent key fields (``protocol: TCP``).
    """

    __slots__ = ("kind", "_fields", "_make_fields", "elem", "atomic", "keys", "key_defaults")

    def __init__(
        self,
        kind: int,
        *,
        fields: dict[str, Atom] | None = None,
        make_fields: Any = None,
        elem: Atom | None = None,
        atomic: bool = False,
        keys: tuple[str, ...] = (),
        key_defaults: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self._fields = fields
        self._make_fields = make_fields
        self.elem = elem
        self.atomic = atomic
        self.keys = keys
        self.key_defaults = key_defaults or {}

    @property
    def fields(self) -> dict[str, Atom]:
        f = self._fields
        if f is None:
            f = self._fields = self._make_fields() if self._make_fields is not None else {}
            self._make_fields = None
        return f

    def child(self, name: str) -> tuple[Atom, bool]:
        """The type of key ``name`` of a MAP and whether it is a declared field."""
        f = self.fields.get(name)
        if f is not None:
            return f, True
        return (self.elem or DEDUCED), False

    def __repr__(self) -> str:
        names = {SCALAR: "scalar", MAP: "map", LIST: "list", UNTYPED: "untyped"}
        extra = " atomic" if self.atomic else ""
        if self.kind == LIST and not self.atomic:
            extra = f" keys={list(self.keys)}" if self.keys else " set"
        return f"<Atom {names[self.kind]}{extra}>"


SCALAR_ATOM = Atom(SCALAR)
DEDUCED = Atom(UNTYPED)
DEDUCED_MAP = Atom(MAP, fields={}, elem=DEDUCED)
ATOMIC_LIST = Atom(LIST, elem=DEDUCED, atomic=True)


def deduce(atom: Atom, value: Any) -> Atom:
    """Resolve an UNTYPED atom against a value (dict: granular map; list: atomic)."""
    if atom.kind != UNTYPED:
        return atom
    if isinstance(value, dict):
        return DEDUCED_MAP
    if isinstance(value, list):
        return ATOMIC_LIST
    return SCALAR_ATOM


# --- built-in kinds -----------------------------------------------------------

# k8s.io/api markers for list fields and atomic map/struct fields, by Go struct:
# "field=atomic|set|map:key1,key2". A list field not listed is atomic.
_FIELD_MARKERS: dict[str, str] = {
    "meta.v1.ObjectMeta": "finalizers=set managedFields=atomic ownerReferences=map:uid",
    "meta.v1.LabelSelector": "matchExpressions=atomic",
    "apps.v1.DaemonSetStatus": "conditions=map:type",
    "apps.v1.DeploymentStatus": "conditions=map:type",
    "apps.v1.ReplicaSetStatus": "conditions=map:type",
    "apps.v1.StatefulSetSpec": "volumeClaimTemplates=atomic",
    "apps.v1.StatefulSetStatus": "conditions=map:type",
    "authentication.v1.TokenRequestSpec": "audiences=atomic",
    "authentication.v1.TokenReviewSpec": "audiences=atomic",
    "authentication.v1.TokenReviewStatus": "audiences=atomic",
    "authentication.v1.UserInfo": "groups=atomic",
    "authorization.v1.FieldSelectorAttributes": "requirements=atomic",
    "authorization.v1.LabelSelectorAttributes": "requirements=atomic",
    "authorization.v1.NonResourceRule": "nonResourceURLs=atomic verbs=atomic",
    "authorization.v1.ResourceRule": "apiGroups=atomic resourceNames=atomic resources=atomic verbs=atomic",
    "authorization.v1.SubjectAccessReviewSpec": "groups=atomic",
    "authorization.v1.SubjectRulesReviewStatus": "nonResourceRules=atomic resourceRules=atomic",
    "autoscaling.v2.HPAScalingRules": "policies=atomic",
    "autoscaling.v2.HorizontalPodAutoscalerSpec": "metrics=atomic",
    "autoscaling.v2.HorizontalPodAutoscalerStatus": "conditions=map:type currentMetrics=atomic",
    "batch.v1.CronJobStatus": "active=atomic",
    "batch.v1.JobSchedulingConfiguration": "resourceClaims=map:name",
    "batch.v1.JobStatus": "conditions=atomic",
    "batch.v1.PodFailurePolicy": "rules=atomic",
    "batch.v1.PodFailurePolicyOnExitCodesRequirement": "values=set",
    "batch.v1.PodFailurePolicyRule": "onPodConditions=atomic",
    "batch.v1.SuccessPolicy": "rules=atomic",
    "batch.v1.UncountedTerminatedPods": "failed=set succeeded=set",
    "core.v1.AvoidPods": "preferAvoidPods=atomic",
    "core.v1.Capabilities": "add=atomic drop=atomic",
    "core.v1.CephFSPersistentVolumeSource": "monitors=atomic",
    "core.v1.CephFSVolumeSource": "monitors=atomic",
    "core.v1.ComponentStatus": "conditions=map:type",
    "core.v1.ConfigMapProjection": "items=atomic",
    "core.v1.ConfigMapVolumeSource": "items=atomic",
    "core.v1.Container": (
        "args=atomic command=atomic env=map:name envFrom=atomic "
        "ports=map:containerPort,protocol resizePolicy=atomic restartPolicyRules=atomic "
        "volumeDevices=map:devicePath volumeMounts=map:mountPath"
    ),
    "core.v1.ContainerImage": "names=atomic",
    "core.v1.ContainerRestartRuleOnExitCodes": "values=set",
    "core.v1.ContainerStatus": "allocatedResourcesStatus=map:name volumeMounts=map:mountPath",
    "core.v1.DownwardAPIProjection": "items=atomic",
    "core.v1.DownwardAPIVolumeSource": "items=atomic",
    "core.v1.EndpointSubset": "addresses=atomic notReadyAddresses=atomic ports=atomic",
    "core.v1.Endpoints": "subsets=atomic",
    "core.v1.EphemeralContainerCommon": (
        "args=atomic command=atomic env=map:name envFrom=atomic "
        "ports=map:containerPort,protocol resizePolicy=atomic restartPolicyRules=atomic "
        "volumeDevices=map:devicePath volumeMounts=map:mountPath"
    ),
    "core.v1.ExecAction": "command=atomic",
    "core.v1.FCVolumeSource": "targetWWNs=atomic wwids=atomic",
    "core.v1.HTTPGetAction": "httpHeaders=atomic",
    "core.v1.HostAlias": "hostnames=atomic",
    "core.v1.ISCSIPersistentVolumeSource": "portals=atomic",
    "core.v1.ISCSIVolumeSource": "portals=atomic",
    "core.v1.LimitRangeSpec": "limits=atomic",
    "core.v1.LinuxContainerUser": "supplementalGroups=atomic",
    "core.v1.LoadBalancerIngress": "ports=atomic",
    "core.v1.LoadBalancerStatus": "ingress=atomic",
    "core.v1.NamespaceSpec": "finalizers=atomic",
    "core.v1.NamespaceStatus": "conditions=map:type",
    "core.v1.NodeAffinity": "preferredDuringSchedulingIgnoredDuringExecution=atomic",
    "core.v1.NodeAllocatableResourceClaimStatus": "containers=set mapping=map:name overhead=map:name",
    "core.v1.NodePodPreemptionPolicy": "disableResizePreemption=set",
    "core.v1.NodeSelector": "nodeSelectorTerms=atomic",
    "core.v1.NodeSelectorRequirement": "values=atomic",
    "core.v1.NodeSelectorTerm": "matchExpressions=atomic matchFields=atomic",
    "core.v1.NodeSpec": "podCIDRs=set taints=atomic",
    "core.v1.NodeStatus": (
        "addresses=map:type conditions=map:type declaredFeatures=atomic images=atomic "
        "runtimeHandlers=atomic volumesAttached=atomic volumesInUse=atomic"
    ),
    "core.v1.PersistentVolumeClaimSpec": "accessModes=atomic",
    "core.v1.PersistentVolumeClaimStatus": "accessModes=atomic conditions=map:type",
    "core.v1.PersistentVolumeSpec": "accessModes=atomic mountOptions=atomic",
    "core.v1.PodAffinity": (
        "preferredDuringSchedulingIgnoredDuringExecution=atomic "
        "requiredDuringSchedulingIgnoredDuringExecution=atomic"
    ),
    "core.v1.PodAffinityTerm": "matchLabelKeys=atomic mismatchLabelKeys=atomic namespaces=atomic",
    "core.v1.PodAntiAffinity": (
        "preferredDuringSchedulingIgnoredDuringExecution=atomic "
        "requiredDuringSchedulingIgnoredDuringExecution=atomic"
    ),
    "core.v1.PodDNSConfig": "nameservers=atomic options=atomic searches=atomic",
    "core.v1.PodExecOptions": "command=atomic",
    "core.v1.PodExtendedResourceClaimStatus": "requestMappings=atomic",
    "core.v1.PodPortForwardOptions": "ports=atomic",
    "core.v1.PodSecurityContext": "supplementalGroups=atomic sysctls=atomic",
    "core.v1.PodSpec": (
        "containers=map:name ephemeralContainers=map:name evictionResponders=map:name "
        "hostAliases=map:ip imagePullSecrets=map:name initContainers=map:name "
        "nodeSelector=atomic readinessGates=atomic resourceClaims=map:name "
        "schedulingGates=map:name tolerations=atomic "
        "topologySpreadConstraints=map:topologyKey,whenUnsatisfiable volumes=map:name"
    ),
    "core.v1.PodStatus": (
        "conditions=map:type containerStatuses=atomic ephemeralContainerStatuses=atomic "
        "hostIPs=atomic initContainerStatuses=atomic "
        "nodeAllocatableResourceClaimStatuses=map:resourceClaimName podIPs=map:ip "
        "resourceClaimStatuses=map:name volumeHealth=map:name"
    ),
    "core.v1.PodVolumeHealth": "healthConditions=map:status,reason",
    "core.v1.ProjectedVolumeSource": "sources=atomic",
    "core.v1.RBDPersistentVolumeSource": "monitors=atomic",
    "core.v1.RBDVolumeSource": "monitors=atomic",
    "core.v1.ReplicationControllerSpec": "selector=atomic",
    "core.v1.ReplicationControllerStatus": "conditions=map:type",
    "core.v1.ResourceQuotaSpec": "scopes=atomic",
    "core.v1.ResourceRequirements": "claims=map:name",
    "core.v1.ResourceStatus": "resources=map:resourceID",
    "core.v1.ScopeSelector": "matchExpressions=atomic",
    "core.v1.ScopedResourceSelectorRequirement": "values=atomic",
    "core.v1.SecretProjection": "items=atomic",
    "core.v1.SecretVolumeSource": "items=atomic",
    "core.v1.ServiceAccount": "imagePullSecrets=atomic secrets=map:name",
    "core.v1.ServiceSpec": (
        "clusterIPs=atomic externalIPs=atomic ipFamilies=atomic "
        "loadBalancerSourceRanges=atomic ports=map:port,protocol selector=atomic"
    ),
    "core.v1.ServiceStatus": "conditions=map:type",
    "core.v1.TopologySelectorLabelRequirement": "values=atomic",
    "core.v1.TopologySelectorTerm": "matchLabelExpressions=atomic",
    "core.v1.TopologySpreadConstraint": "matchLabelKeys=atomic",
    "core.v1.VolumeHealthStatus": "healthConditions=map:status,reason",
    "core.v1.VolumeMount": "bindMountOptions=set",
    "discovery.v1.Endpoint": "addresses=set",
    "discovery.v1.EndpointHints": "forNodes=atomic forZones=atomic",
    "discovery.v1.EndpointSlice": "endpoints=atomic ports=atomic",
    "networking.v1.HTTPIngressRuleValue": "paths=atomic",
    "networking.v1.IPBlock": "except=atomic",
    "networking.v1.IngressLoadBalancerIngress": "ports=atomic",
    "networking.v1.IngressLoadBalancerStatus": "ingress=atomic",
    "networking.v1.IngressSpec": "rules=atomic tls=atomic",
    "networking.v1.IngressTLS": "hosts=atomic",
    "networking.v1.NetworkPolicyEgressRule": "ports=atomic to=atomic",
    "networking.v1.NetworkPolicyIngressRule": "from=atomic ports=atomic",
    "networking.v1.NetworkPolicySpec": "egress=atomic ingress=atomic policyTypes=atomic",
    "networking.v1.ServiceCIDRSpec": "cidrs=atomic",
    "networking.v1.ServiceCIDRStatus": "conditions=map:type",
    "node.v1.Scheduling": "nodeSelector=atomic tolerations=atomic",
    "policy.v1.PodDisruptionBudgetStatus": "conditions=map:type",
    "rbac.v1.AggregationRule": "clusterRoleSelectors=atomic",
    "rbac.v1.ClusterRole": "rules=atomic",
    "rbac.v1.ClusterRoleBinding": "subjects=atomic",
    "rbac.v1.PolicyRule": (
        "apiGroups=atomic nonResourceURLs=atomic resourceNames=atomic resources=atomic "
        "verbs=atomic"
    ),
    "rbac.v1.Role": "rules=atomic",
    "rbac.v1.RoleBinding": "subjects=atomic",
    "storage.v1.CSIDriverSpec": "tokenRequests=atomic volumeLifecycleModes=set",
    "storage.v1.CSINodeDriver": "topologyKeys=atomic",
    "storage.v1.CSINodeSpec": "drivers=map:name",
    "storage.v1.CSINodeStatus": "storageHealth=map:name",
    "storage.v1.StorageClass": "allowedTopologies=atomic mountOptions=atomic",
    "storage.v1.StorageHealth": "healthConditions=atomic",
}

# Go structs marked +structType=atomic or +mapType=atomic.
_ATOMIC_TYPES = frozenset(
    (
        "meta.v1.LabelSelector meta.v1.OwnerReference "
        "autoscaling.v1.CrossVersionObjectReference core.v1.ConfigMapKeySelector "
        "core.v1.EndpointAddress core.v1.EndpointPort core.v1.EvictionResponder "
        "core.v1.FileKeySelector core.v1.LocalObjectReference core.v1.NodeSelector "
        "core.v1.NodeSelectorTerm core.v1.ObjectFieldSelector core.v1.ObjectReference "
        "core.v1.ResourceFieldSelector core.v1.ScopeSelector core.v1.SecretKeySelector "
        "core.v1.SecretReference core.v1.TopologySelectorTerm "
        "core.v1.TypedLocalObjectReference discovery.v1.EndpointPort "
        "networking.v1.ServiceBackendPort rbac.v1.RoleRef rbac.v1.Subject"
    ).split()
)

_SCALAR_TYPES = frozenset(("str", "bool", "i32", "i64", "f64", "bytes"))
_OPAQUE_SCALARS = frozenset(("meta.v1.Time", "meta.v1.MicroTime", "intstr.IntOrString", "resource.Quantity"))
_KEY_DEFAULTS = {"protocol": "TCP"}  # the only key field with a default in the built-in schemas

_MARKERS: dict[str, dict[str, str]] = {
    msg: dict(item.split("=", 1) for item in spec.split()) for msg, spec in _FIELD_MARKERS.items()
}
_MESSAGE_ATOMS: dict[str, Atom] = {}


def _type_atom(type_name: str) -> Atom:
    if type_name in _SCALAR_TYPES or type_name in _OPAQUE_SCALARS:
        return SCALAR_ATOM
    if type_name not in protobuf._schema():
        return DEDUCED  # FieldsV1, RawExtension: free-form JSON
    return message_atom(type_name)


def _list_atom(elem: Atom, marker: str | None) -> Atom:
    if not marker or marker == "atomic":
        return Atom(LIST, elem=elem, atomic=True)
    if marker == "set":
        return Atom(LIST, elem=elem)
    keys = tuple(marker.split(":", 1)[1].split(","))
    defaults = {k: v for k, v in _KEY_DEFAULTS.items() if k in keys}
    return Atom(LIST, elem=elem, keys=keys, key_defaults=defaults)


def _field_atom(msg_name: str, f: Any) -> Atom:
    marker = _MARKERS.get(msg_name, {}).get(f.json)
    elem = _type_atom(f.type)
    if f.label == "[]":
        return _list_atom(elem, marker)
    if f.label == "{}":
        return Atom(MAP, fields={}, elem=elem, atomic=marker == "atomic")
    if marker == "atomic" and elem.kind == MAP and not elem.atomic:
        return Atom(MAP, make_fields=lambda: elem.fields, elem=elem.elem, atomic=True)
    return elem


def _message_fields(msg_name: str) -> dict[str, Atom]:
    msg = protobuf._schema()[msg_name]
    out: dict[str, Atom] = {}
    for f in msg.fields:
        if f.json == "":
            out.update(message_atom(f.type).fields)  # inline (embedded) struct
        else:
            out[f.json] = _field_atom(msg_name, f)
    return out


def message_atom(msg_name: str) -> Atom:
    """The atom of a Go struct from the protobuf field tables (cached)."""
    atom = _MESSAGE_ATOMS.get(msg_name)
    if atom is not None:
        return atom
    msg = protobuf._schema()[msg_name]
    if msg.wrapper:  # a Go named slice (ExtraValue []string)
        atom = Atom(LIST, elem=_type_atom(msg.fields[0].type), atomic=True)
    else:
        atom = Atom(
            MAP,
            make_fields=lambda: _message_fields(msg_name),
            elem=None,
            atomic=msg_name in _ATOMIC_TYPES,
        )
    _MESSAGE_ATOMS[msg_name] = atom
    return atom


def object_meta_atom() -> Atom:
    return message_atom("meta.v1.ObjectMeta")


# --- custom resources -----------------------------------------------------------


def openapi_atom(schema: Any) -> Atom:
    """The atom of an OpenAPI v3 (structural) schema."""
    if not isinstance(schema, dict):
        return DEDUCED
    if schema.get("x-kubernetes-int-or-string"):
        return SCALAR_ATOM
    t = schema.get("type")
    props = schema.get("properties")
    addl = schema.get("additionalProperties")
    if t == "object" or isinstance(props, dict) or isinstance(addl, dict):
        fields: dict[str, Atom] = {}
        if isinstance(props, dict):
            fields = {k: openapi_atom(v) for k, v in props.items()}
        if schema.get("x-kubernetes-embedded-resource"):
            fields.setdefault("apiVersion", SCALAR_ATOM)
            fields.setdefault("kind", SCALAR_ATOM)
            fields["metadata"] = object_meta_atom()
        elem: Atom | None = None
        if isinstance(addl, dict):
            elem = openapi_atom(addl)
        elif not fields or addl is True or schema.get("x-kubernetes-preserve-unknown-fields"):
            elem = DEDUCED
        return Atom(MAP, fields=fields, elem=elem, atomic=schema.get("x-kubernetes-map-type") == "atomic")
    if t == "array":
        items = schema.get("items")
        elem = openapi_atom(items)
        lt = schema.get("x-kubernetes-list-type")
        if lt == "set":
            return Atom(LIST, elem=elem)
        if lt == "map":
            keys = tuple(k for k in schema.get("x-kubernetes-list-map-keys") or () if isinstance(k, str))
            if keys:
                iprops = (items or {}).get("properties") if isinstance(items, dict) else None
                defaults = {
                    k: iprops[k]["default"]
                    for k in keys
                    if isinstance(iprops, dict) and isinstance(iprops.get(k), dict) and "default" in iprops[k]
                }
                return Atom(LIST, elem=elem, keys=keys, key_defaults=defaults)
        return Atom(LIST, elem=elem, atomic=True)
    if t in ("string", "integer", "number", "boolean"):
        return SCALAR_ATOM
    return DEDUCED


def _with_standard_fields(atom: Atom) -> Atom:
    fields = dict(atom.fields) if atom.kind == MAP else {}
    fields["apiVersion"] = SCALAR_ATOM
    fields["kind"] = SCALAR_ATOM
    fields["metadata"] = object_meta_atom()
    elem = atom.elem if atom.kind == MAP else DEDUCED
    return Atom(MAP, fields=fields, elem=elem)


GENERIC_ROOT = Atom(
    MAP,
    make_fields=lambda: {"apiVersion": SCALAR_ATOM, "kind": SCALAR_ATOM, "metadata": object_meta_atom()},
    elem=DEDUCED,
)

_CR_ATOMS: dict[int, tuple[Any, Atom]] = {}


def root_atom(api_version: str, kind: str, openapi_schema: dict[str, Any] | None = None) -> Atom:
    """The atom of a whole object of this kind (see the module docstring)."""
    if openapi_schema is not None:
        hit = _CR_ATOMS.get(id(openapi_schema))
        if hit is not None and hit[0] is openapi_schema:
            return hit[1]
        atom = _with_standard_fields(openapi_atom(openapi_schema))
        if len(_CR_ATOMS) > 512:
            _CR_ATOMS.clear()
        _CR_ATOMS[id(openapi_schema)] = (openapi_schema, atom)
        return atom
    msg = KINDS.get((api_version, kind))
    if msg is not None:
        return message_atom(msg)
    return GENERIC_ROOT
