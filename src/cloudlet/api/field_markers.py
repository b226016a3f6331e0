"""Kubernetes field markers of the built-in types: the one table of them.

The ``+listType``/``+listMapKey``/``+mapType``/``+structType`` markers (and,
for OpenAPI, ``+required``/``+optional`` where they matter) of k8s.io/api and
k8s.io/apimachinery v0.36.3 — the version of the field tables in
:mod:`cloudlet.api.protobuf_schema` — kept as data. Two consumers:
:mod:`cloudlet.api.fieldtypes` (server-side apply: list types and keys, atomic
maps and structs) and :mod:`cloudlet.api.openapi_schemas` (the
``x-kubernetes-list-type`` / ``-list-map-keys`` / ``-map-type`` extensions and
``required``).

Per message (``package.Message`` as in the field tables), the fields whose
markers matter, as ``json:fact`` tokens:

* ``list=atomic`` | ``list=set`` | ``list=map(k1,k2)`` — ``+listType`` /
  ``+listMapKey``. A list field not listed is atomic.
* ``map=atomic`` | ``map=granular`` — ``+mapType`` on a map field.
* ``struct=atomic`` | ``struct=granular`` — ``+structType`` on a struct field
  (overrides the struct type's own marker in :data:`ATOMIC_STRUCTS`).
* ``required`` | ``optional`` — where openapi-gen's required-ness differs from
  "not omitempty" (``+required`` / ``+optional``); OpenAPI only.

One deliberate deviation from v0.36.3: PodStatus.nodeAllocatableResourceClaimStatuses
is a map keyed by resourceClaimName (as upstream since, and as in the server's
strategic merge patch tables, :mod:`cloudlet.api.patch`); v0.36.3 says atomic.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

__all__ = ["ATOMIC_STRUCTS", "FIELD_TAGS", "field_tags"]

FIELD_TAGS: dict[str, str] = {
    "apps.v1.DaemonSetStatus": "conditions:list=map(type)",
    "apps.v1.DeploymentStatus": "conditions:list=map(type)",
    "apps.v1.ReplicaSetStatus": "conditions:list=map(type)",
    "apps.v1.StatefulSetOrdinals": "start:optional",
    "apps.v1.StatefulSetSpec": "volumeClaimTemplates:list=atomic serviceName:optional",
    "apps.v1.StatefulSetStatus": "conditions:list=map(type) availableReplicas:optional",
    "authentication.v1.TokenRequest": "spec:optional",
    "authentication.v1.TokenRequestSpec": (
        "audiences:list=atomic audiences:optional expirationSeconds:optional "
        "boundObjectRef:optional"
    ),
    "authentication.v1.TokenRequestStatus": "token:optional expirationTimestamp:optional",
    "authentication.v1.TokenReviewSpec": "token:required audiences:list=atomic",
    "authentication.v1.TokenReviewStatus": "audiences:list=atomic",
    "authentication.v1.UserInfo": "groups:list=atomic",
    "authorization.v1.FieldSelectorAttributes": "requirements:list=atomic",
    "authorization.v1.LabelSelectorAttributes": "requirements:list=atomic",
    "authorization.v1.NonResourceRule": "verbs:list=atomic nonResourceURLs:list=atomic",
    "authorization.v1.ResourceRule": (
        "verbs:list=atomic apiGroups:list=atomic resources:list=atomic resourceNames:list=atomic"
    ),
    "authorization.v1.SubjectAccessReviewSpec": "groups:list=atomic",
    "authorization.v1.SubjectRulesReviewStatus": "resourceRules:list=atomic nonResourceRules:list=atomic",
    "autoscaling.v1.HorizontalPodAutoscaler": "spec:required",
    "autoscaling.v2.HPAScalingRules": "policies:list=atomic",
    "autoscaling.v2.HorizontalPodAutoscaler": "spec:required",
    "autoscaling.v2.HorizontalPodAutoscalerSpec": "metrics:list=atomic",
    "autoscaling.v2.HorizontalPodAutoscalerStatus": (
        "currentMetrics:list=atomic currentMetrics:optional conditions:list=map(type)"
    ),
    "batch.v1.CronJob": "spec:required",
    "batch.v1.CronJobStatus": "active:list=atomic",
    "batch.v1.JobStatus": "conditions:list=atomic",
    "batch.v1.PodFailurePolicy": "rules:list=atomic",
    "batch.v1.PodFailurePolicyOnExitCodesRequirement": "values:list=set",
    "batch.v1.PodFailurePolicyOnPodConditionsPattern": "status:optional",
    "batch.v1.PodFailurePolicyRule": "onPodConditions:list=atomic",
    "batch.v1.SuccessPolicy": "rules:list=atomic",
    "batch.v1.UncountedTerminatedPods": "succeeded:list=set failed:list=set",
    "core.v1.AzureFilePersistentVolumeSource": "secretNamespace:optional",
    "core.v1.Capabilities": "add:list=atomic drop:list=atomic",
    "core.v1.CephFSPersistentVolumeSource": "monitors:list=atomic",
    "core.v1.CephFSVolumeSource": "monitors:list=atomic",
    "core.v1.ConfigMapProjection": "items:list=atomic",
    "core.v1.ConfigMapVolumeSource": "items:list=atomic",
    "core.v1.Container": (
        "command:list=atomic args:list=atomic ports:list=map(containerPort,protocol) "
        "envFrom:list=atomic env:list=map(name) resizePolicy:list=atomic "
        "restartPolicyRules:list=atomic volumeMounts:list=map(mountPath) "
        "volumeDevices:list=map(devicePath)"
    ),
    "core.v1.ContainerImage": "names:list=atomic names:optional",
    "core.v1.ContainerRestartRule": "action:required",
    "core.v1.ContainerRestartRuleOnExitCodes": "operator:required values:list=set",
    "core.v1.ContainerStatus": "volumeMounts:list=map(mountPath) allocatedResourcesStatus:list=map(name)",
    "core.v1.DownwardAPIProjection": "items:list=atomic",
    "core.v1.DownwardAPIVolumeSource": "items:list=atomic",
    "core.v1.EndpointSubset": "addresses:list=atomic notReadyAddresses:list=atomic ports:list=atomic",
    "core.v1.Endpoints": "subsets:list=atomic",
    "core.v1.EphemeralContainerCommon": (
        "command:list=atomic args:list=atomic ports:list=map(containerPort,protocol) "
        "envFrom:list=atomic env:list=map(name) resizePolicy:list=atomic "
        "restartPolicyRules:list=atomic volumeMounts:list=map(mountPath) "
        "volumeDevices:list=map(devicePath)"
    ),
    "core.v1.Event": "reportingComponent:optional reportingInstance:optional",
    "core.v1.ExecAction": "command:list=atomic",
    "core.v1.FCVolumeSource": "targetWWNs:list=atomic wwids:list=atomic",
    "core.v1.GRPCAction": "service:optional",
    "core.v1.HTTPGetAction": "httpHeaders:list=atomic",
    "core.v1.HostAlias": "hostnames:list=atomic",
    "core.v1.ISCSIPersistentVolumeSource": "portals:list=atomic",
    "core.v1.ISCSIVolumeSource": "portals:list=atomic",
    "core.v1.ImageVolumeStatus": "imageRef:required",
    "core.v1.LimitRangeSpec": "limits:list=atomic",
    "core.v1.LinuxContainerUser": "supplementalGroups:list=atomic",
    "core.v1.LoadBalancerIngress": "ports:list=atomic",
    "core.v1.LoadBalancerStatus": "ingress:list=atomic",
    "core.v1.NamespaceSpec": "finalizers:list=atomic",
    "core.v1.NamespaceStatus": "conditions:list=map(type)",
    "core.v1.NodeAffinity": "preferredDuringSchedulingIgnoredDuringExecution:list=atomic",
    "core.v1.NodeAllocatableResourceClaimStatus": "containers:list=set",
    "core.v1.NodeRuntimeHandler": "name:optional",
    "core.v1.NodeSelector": "nodeSelectorTerms:list=atomic",
    "core.v1.NodeSelectorRequirement": "values:list=atomic",
    "core.v1.NodeSelectorTerm": "matchExpressions:list=atomic matchFields:list=atomic",
    "core.v1.NodeSpec": "podCIDRs:list=set taints:list=atomic",
    "core.v1.NodeStatus": (
        "conditions:list=map(type) addresses:list=map(type) images:list=atomic "
        "volumesInUse:list=atomic volumesAttached:list=atomic runtimeHandlers:list=atomic "
        "declaredFeatures:list=atomic"
    ),
    "core.v1.PersistentVolumeClaimSpec": "accessModes:list=atomic",
    "core.v1.PersistentVolumeClaimStatus": (
        "accessModes:list=atomic conditions:list=map(type) allocatedResourceStatuses:map=granular"
    ),
    "core.v1.PersistentVolumeSpec": (
        "accessModes:list=atomic claimRef:struct=granular mountOptions:list=atomic"
    ),
    "core.v1.PodAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution:list=atomic "
        "preferredDuringSchedulingIgnoredDuringExecution:list=atomic"
    ),
    "core.v1.PodAffinityTerm": (
        "namespaces:list=atomic matchLabelKeys:list=atomic mismatchLabelKeys:list=atomic"
    ),
    "core.v1.PodAntiAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution:list=atomic "
        "preferredDuringSchedulingIgnoredDuringExecution:list=atomic"
    ),
    "core.v1.PodCertificateProjection": "signerName:required keyType:required",
    "core.v1.PodDNSConfig": "nameservers:list=atomic searches:list=atomic options:list=atomic",
    "core.v1.PodExtendedResourceClaimStatus": "requestMappings:list=atomic",
    "core.v1.PodSecurityContext": "supplementalGroups:list=atomic sysctls:list=atomic",
    "core.v1.PodSpec": (
        "volumes:list=map(name) initContainers:list=map(name) containers:list=map(name) "
        "ephemeralContainers:list=map(name) nodeSelector:map=atomic "
        "imagePullSecrets:list=map(name) tolerations:list=atomic hostAliases:list=map(ip) "
        "readinessGates:list=atomic "
        "topologySpreadConstraints:list=map(topologyKey,whenUnsatisfiable) "
        "schedulingGates:list=map(name) resourceClaims:list=map(name)"
    ),
    "core.v1.PodStatus": (
        "conditions:list=map(type) hostIPs:list=atomic podIPs:list=map(ip) "
        "initContainerStatuses:list=atomic containerStatuses:list=atomic "
        "ephemeralContainerStatuses:list=atomic resourceClaimStatuses:list=map(name) "
        "nodeAllocatableResourceClaimStatuses:list=map(resourceClaimName)"
    ),
    "core.v1.ProjectedVolumeSource": "sources:list=atomic sources:optional",
    "core.v1.RBDPersistentVolumeSource": "monitors:list=atomic",
    "core.v1.RBDVolumeSource": "monitors:list=atomic",
    "core.v1.ReplicationControllerSpec": "selector:map=atomic",
    "core.v1.ReplicationControllerStatus": "conditions:list=map(type)",
    "core.v1.ResourceQuotaSpec": "scopes:list=atomic",
    "core.v1.ResourceRequirements": "claims:list=map(name)",
    "core.v1.ResourceStatus": "resources:list=map(resourceID)",
    "core.v1.ScopeSelector": "matchExpressions:list=atomic",
    "core.v1.ScopedResourceSelectorRequirement": "values:list=atomic",
    "core.v1.SecretProjection": "items:list=atomic",
    "core.v1.SecretVolumeSource": "items:list=atomic",
    "core.v1.ServiceAccount": "secrets:list=map(name) imagePullSecrets:list=atomic",
    "core.v1.ServiceSpec": (
        "ports:list=map(port,protocol) selector:map=atomic clusterIPs:list=atomic "
        "externalIPs:list=atomic loadBalancerSourceRanges:list=atomic ipFamilies:list=atomic"
    ),
    "core.v1.ServiceStatus": "conditions:list=map(type)",
    "core.v1.TopologySelectorLabelRequirement": "values:list=atomic",
    "core.v1.TopologySelectorTerm": "matchLabelExpressions:list=atomic",
    "core.v1.TopologySpreadConstraint": "matchLabelKeys:list=atomic",
    "core.v1.TypedLocalObjectReference": "apiGroup:optional",
    "core.v1.TypedObjectReference": "apiGroup:optional",
    "discovery.v1.Endpoint": "addresses:list=set",
    "discovery.v1.EndpointHints": "forZones:list=atomic forNodes:list=atomic",
    "discovery.v1.EndpointSlice": "endpoints:list=atomic endpoints:optional ports:list=atomic ports:optional",
    "events.v1.Event": "metadata:optional",
    "meta.v1.DeleteOptions": "dryRun:list=atomic",
    "meta.v1.FieldSelectorRequirement": "values:list=atomic",
    "meta.v1.LabelSelector": "matchExpressions:list=atomic",
    "meta.v1.LabelSelectorRequirement": "values:list=atomic",
    "meta.v1.ObjectMeta": "ownerReferences:list=map(uid) finalizers:list=set managedFields:list=atomic",
    "networking.v1.HTTPIngressRuleValue": "paths:list=atomic",
    "networking.v1.IPBlock": "except:list=atomic",
    "networking.v1.IngressClassParametersReference": "scope:optional",
    "networking.v1.IngressLoadBalancerIngress": "ports:list=atomic",
    "networking.v1.IngressLoadBalancerStatus": "ingress:list=atomic",
    "networking.v1.IngressSpec": "tls:list=atomic rules:list=atomic",
    "networking.v1.IngressTLS": "hosts:list=atomic",
    "networking.v1.NetworkPolicyEgressRule": "ports:list=atomic to:list=atomic",
    "networking.v1.NetworkPolicyIngressRule": "ports:list=atomic from:list=atomic",
    "networking.v1.NetworkPolicySpec": (
        "podSelector:optional ingress:list=atomic egress:list=atomic policyTypes:list=atomic"
    ),
    "node.v1.Scheduling": "nodeSelector:map=atomic tolerations:list=atomic",
    "policy.v1.PodDisruptionBudgetStatus": (
        "disruptionsAllowed:optional currentHealthy:optional desiredHealthy:optional "
        "expectedPods:optional conditions:list=map(type)"
    ),
    "rbac.v1.AggregationRule": "clusterRoleSelectors:list=atomic",
    "rbac.v1.ClusterRole": "rules:list=atomic rules:optional",
    "rbac.v1.ClusterRoleBinding": "subjects:list=atomic",
    "rbac.v1.PolicyRule": (
        "verbs:list=atomic apiGroups:list=atomic resources:list=atomic resourceNames:list=atomic "
        "nonResourceURLs:list=atomic"
    ),
    "rbac.v1.Role": "rules:list=atomic rules:optional",
    "rbac.v1.RoleBinding": "subjects:list=atomic",
    "rbac.v1.RoleRef": "apiGroup:optional",
    "scheduling.v1.PriorityClass": "value:optional",
    "storage.v1.StorageClass": "mountOptions:list=atomic allowedTopologies:list=atomic",
}

# Types marked +structType=atomic (``x-kubernetes-map-type: atomic`` on the definition).
ATOMIC_STRUCTS: frozenset[str] = frozenset({
    "autoscaling.v1.CrossVersionObjectReference",
    "core.v1.ConfigMapKeySelector",
    "core.v1.EndpointAddress",
    "core.v1.EndpointPort",
    "core.v1.FileKeySelector",
    "core.v1.LocalObjectReference",
    "core.v1.NodeSelector",
    "core.v1.NodeSelectorTerm",
    "core.v1.ObjectFieldSelector",
    "core.v1.ObjectReference",
    "core.v1.ResourceFieldSelector",
    "core.v1.ScopeSelector",
    "core.v1.SecretKeySelector",
    "core.v1.SecretReference",
    "core.v1.TopologySelectorTerm",
    "core.v1.TypedLocalObjectReference",
    "discovery.v1.EndpointPort",
    "meta.v1.LabelSelector",
    "meta.v1.OwnerReference",
    "networking.v1.ServiceBackendPort",
    "rbac.v1.RoleRef",
    "rbac.v1.Subject",
})

# meta.v1 Status/StatusDetails and apiextensions.k8s.io/v1 CustomResourceDefinition:
# messages :mod:`cloudlet.api.openapi_schemas` adds to the field tables.
FIELD_TAGS.update({
    "meta.v1.StatusDetails": "causes:list=atomic",
    "apiextensions.v1.CustomResourceDefinitionSpec": "versions:list=atomic",
    "apiextensions.v1.WebhookConversion": "conversionReviewVersions:list=atomic",
    "apiextensions.v1.CustomResourceDefinitionVersion": (
        "additionalPrinterColumns:list=atomic selectableFields:list=atomic"
    ),
    "apiextensions.v1.CustomResourceDefinitionNames": "shortNames:list=atomic categories:list=atomic",
    "apiextensions.v1.CustomResourceDefinitionStatus": (
        "conditions:list=map(type) conditions:optional acceptedNames:optional "
        "storedVersions:list=atomic storedVersions:optional"
    ),
})

_TAG_RE = re.compile(r"(\w+):(?:(required|optional)|(list|map|struct)=(\w+)(?:\(([\w,]+)\))?)")


@cache
def field_tags() -> dict[tuple[str, str], dict[str, Any]]:
    """``(message, json) -> {"required": bool, "list": ..., "keys": [...], "map": ..., "struct": ...}``
    parsed from :data:`FIELD_TAGS`."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for message, spec in FIELD_TAGS.items():
        for token in spec.split():
            m = _TAG_RE.fullmatch(token)
            if m is None:
                raise ValueError(f"bad FIELD_TAGS token {token!r} in {message}")
            name, req, what, value, keys = m.groups()
            tags = out.setdefault((message, name), {})
            if req:
                tags["required"] = req == "required"
            else:
                tags[what] = value
                if keys:
                    tags["keys"] = keys.split(",")
    return out
