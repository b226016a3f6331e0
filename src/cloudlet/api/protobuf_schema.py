"""Field tables for the Kubernetes protobuf messages cloudlet can decode.

``protobuf.py`` decodes ``application/vnd.kubernetes.protobuf`` request
bodies with these tables; responses stay JSON, so nothing here encodes.

The facts come from the ``generated.proto`` files of k8s.io/api and
k8s.io/apimachinery (v0.36.3: field numbers never change once released, so
newer tables are a superset of what older clients send) joined with the Go
struct tags of the same types, which decide the JSON shape.

Table format. ``MESSAGES[package][Message]`` is one string of fields in Go
struct order (the order JSON output uses); each field is
``jsonName=number:type`` followed by flags:

``?``  ``omitempty`` in the Go JSON tag
``!``  ``omitzero`` in the Go JSON tag (omitted when the value is the zero value)

and ``type`` is one of

``str bool i32 i64 f64 bytes``  scalars
``Name`` / ``pkg.v1.Name``  a message of the same / another package
``*T``  a Go pointer: present-but-zero is kept (``replicas: 0``)
``[]T``  repeated
``{T}``  ``map<string, T>``

An empty ``jsonName`` is a Go embedded struct with ``json:",inline"``: its
fields are merged into the parent. A message whose only field is an inline
repeated field is a Go named slice (``type ExtraValue []string``) and stands
for the bare list. ``meta.v1.Time``, ``meta.v1.MicroTime``,
``meta.v1.FieldsV1``, ``intstr.IntOrString``, ``resource.Quantity`` and
``runtime.RawExtension`` have custom JSON forms and are built into the
decoder (``_SPECIAL`` in ``protobuf.py``; ``meta.v1.Duration`` would go there
too once a kind needs it).

Adding a kind: add its messages here (every message reachable from it that is
not already present; a new API group gets its own package key), then one
``_kinds(...)`` line below. ``tests/api/test_protobuf.py`` checks that every
reference resolves and that every kind decodes.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "meta.v1": {
        "Condition": (
            "type=1:str status=2:str observedGeneration=3:i64? lastTransitionTime=4:Time "
            "reason=5:str message=6:str"
        ),
        "DeleteOptions": (
            "gracePeriodSeconds=1:*i64? preconditions=2:*Preconditions? "
            "orphanDependents=3:*bool? propagationPolicy=4:*str? dryRun=5:[]str? "
            "ignoreStoreReadErrorWithClusterBreakingPotential=6:*bool?"
        ),
        "FieldSelectorRequirement": "key=1:str operator=2:str values=3:[]str?",
        "LabelSelector": "matchLabels=1:{str}? matchExpressions=2:[]LabelSelectorRequirement?",
        "LabelSelectorRequirement": "key=1:str operator=2:str values=3:[]str?",
        "ManagedFieldsEntry": (
            "manager=1:str? operation=2:str? apiVersion=3:str? time=4:*Time? "
            "fieldsType=6:str? fieldsV1=7:*FieldsV1? subresource=8:str?"
        ),
        "ObjectMeta": (
            "name=1:str? generateName=2:str? namespace=3:str? selfLink=4:str? uid=5:str? "
            "resourceVersion=6:str? generation=7:i64? creationTimestamp=8:Time?! "
            "deletionTimestamp=9:*Time? deletionGracePeriodSeconds=10:*i64? labels=11:{str}? "
            "annotations=12:{str}? ownerReferences=13:[]OwnerReference? finalizers=14:[]str? "
            "managedFields=17:[]ManagedFieldsEntry?"
        ),
        "OwnerReference": (
            "apiVersion=5:str kind=1:str name=3:str uid=4:str controller=6:*bool? "
            "blockOwnerDeletion=7:*bool?"
        ),
        "Preconditions": "uid=1:*str? resourceVersion=2:*str?",
    },
    "core.v1": {
        "AWSElasticBlockStoreVolumeSource": (
            "volumeID=1:str fsType=2:str? partition=3:i32? readOnly=4:bool?"
        ),
        "Affinity": (
            "nodeAffinity=1:*NodeAffinity? podAffinity=2:*PodAffinity? "
            "podAntiAffinity=3:*PodAntiAffinity?"
        ),
        "AppArmorProfile": "type=1:str localhostProfile=2:*str?",
        "AttachedVolume": "name=1:str devicePath=2:str",
        "AzureDiskVolumeSource": (
            "diskName=1:str diskURI=2:str cachingMode=3:*str? fsType=4:*str? "
            "readOnly=5:*bool? kind=6:*str?"
        ),
        "AzureFilePersistentVolumeSource": (
            "secretName=1:str shareName=2:str readOnly=3:bool? secretNamespace=4:*str"
        ),
        "AzureFileVolumeSource": "secretName=1:str shareName=2:str readOnly=3:bool?",
        "Binding": "metadata=1:meta.v1.ObjectMeta? target=2:ObjectReference",
        "CSIPersistentVolumeSource": (
            "driver=1:str volumeHandle=2:str readOnly=3:bool? fsType=4:str? "
            "volumeAttributes=5:{str}? controllerPublishSecretRef=6:*SecretReference? "
            "nodeStageSecretRef=7:*SecretReference? nodePublishSecretRef=8:*SecretReference? "
            "controllerExpandSecretRef=9:*SecretReference? nodeExpandSecretRef=10:*SecretReference?"
        ),
        "CSIVolumeSource": (
            "driver=1:str readOnly=2:*bool? fsType=3:*str? volumeAttributes=4:{str}? "
            "nodePublishSecretRef=5:*LocalObjectReference?"
        ),
        "Capabilities": "add=1:[]str? drop=2:[]str?",
        "CephFSPersistentVolumeSource": (
            "monitors=1:[]str path=2:str? user=3:str? secretFile=4:str? "
            "secretRef=5:*SecretReference? readOnly=6:bool?"
        ),
        "CephFSVolumeSource": (
            "monitors=1:[]str path=2:str? user=3:str? secretFile=4:str? "
            "secretRef=5:*LocalObjectReference? readOnly=6:bool?"
        ),
        "CinderPersistentVolumeSource": (
            "volumeID=1:str fsType=2:str? readOnly=3:bool? secretRef=4:*SecretReference?"
        ),
        "CinderVolumeSource": (
            "volumeID=1:str fsType=2:str? readOnly=3:bool? secretRef=4:*LocalObjectReference?"
        ),
        "ClientIPConfig": "timeoutSeconds=1:*i32?",
        "ClusterTrustBundleProjection": (
            "name=1:*str? signerName=2:*str? "
            "labelSelector=3:*meta.v1.LabelSelector? optional=5:*bool? path=4:str"
        ),
        "ConfigMap": (
            "metadata=1:meta.v1.ObjectMeta? immutable=4:*bool? data=2:{str}? binaryData=3:{bytes}?"
        ),
        "ConfigMapEnvSource": "=1:LocalObjectReference optional=2:*bool?",
        "ConfigMapKeySelector": "=1:LocalObjectReference key=2:str optional=3:*bool?",
        "ConfigMapNodeConfigSource": (
            "namespace=1:str name=2:str uid=3:str? resourceVersion=4:str? kubeletConfigKey=5:str"
        ),
        "ConfigMapProjection": "=1:LocalObjectReference items=2:[]KeyToPath? optional=4:*bool?",
        "ConfigMapVolumeSource": (
            "=1:LocalObjectReference items=2:[]KeyToPath? defaultMode=3:*i32? optional=4:*bool?"
        ),
        "Container": (
            "name=1:str image=2:str? command=3:[]str? args=4:[]str? workingDir=5:str? "
            "ports=6:[]ContainerPort? envFrom=19:[]EnvFromSource? env=7:[]EnvVar? "
            "resources=8:ResourceRequirements? resizePolicy=23:[]ContainerResizePolicy? "
            "restartPolicy=24:*str? restartPolicyRules=25:[]ContainerRestartRule? "
            "volumeMounts=9:[]VolumeMount? volumeDevices=21:[]VolumeDevice? livenessProbe=10:*Probe? "
            "readinessProbe=11:*Probe? startupProbe=22:*Probe? lifecycle=12:*Lifecycle? "
            "terminationMessagePath=13:str? terminationMessagePolicy=20:str? imagePullPolicy=14:str? "
            "securityContext=15:*SecurityContext? stdin=16:bool? stdinOnce=17:bool? tty=18:bool?"
        ),
        "ContainerExtendedResourceRequest": "containerName=1:str resourceName=2:str requestName=3:str",
        "ContainerImage": "names=1:[]str sizeBytes=2:i64?",
        "ContainerPort": (
            "name=1:str? hostPort=2:i32? containerPort=3:i32 protocol=4:str? hostIP=5:str?"
        ),
        "ContainerResizePolicy": "resourceName=1:str restartPolicy=2:str",
        "ContainerRestartRule": "action=1:str? exitCodes=2:*ContainerRestartRuleOnExitCodes?",
        "ContainerRestartRuleOnExitCodes": "operator=1:str? values=2:[]i32?",
        "ContainerState": (
            "waiting=1:*ContainerStateWaiting? running=2:*ContainerStateRunning? "
            "terminated=3:*ContainerStateTerminated?"
        ),
        "ContainerStateRunning": "startedAt=1:meta.v1.Time?",
        "ContainerStateTerminated": (
            "exitCode=1:i32 signal=2:i32? reason=3:str? message=4:str? "
            "startedAt=5:meta.v1.Time? finishedAt=6:meta.v1.Time? containerID=7:str?"
        ),
        "ContainerStateWaiting": "reason=1:str? message=2:str?",
        "ContainerStatus": (
            "name=1:str state=2:ContainerState? lastState=3:ContainerState? "
            "ready=4:bool restartCount=5:i32 image=6:str imageID=7:str containerID=8:str? "
            "started=9:*bool? allocatedResources=10:{resource.Quantity}? "
            "resources=11:*ResourceRequirements? volumeMounts=12:[]VolumeMountStatus? "
            "user=13:*ContainerUser? allocatedResourcesStatus=14:[]ResourceStatus? "
            "stopSignal=15:*str?"
        ),
        "ContainerUser": "linux=1:*LinuxContainerUser?",
        "DaemonEndpoint": "Port=1:i32",
        "DownwardAPIProjection": "items=1:[]DownwardAPIVolumeFile?",
        "DownwardAPIVolumeFile": (
            "path=1:str fieldRef=2:*ObjectFieldSelector? "
            "resourceFieldRef=3:*ResourceFieldSelector? mode=4:*i32?"
        ),
        "DownwardAPIVolumeSource": "items=1:[]DownwardAPIVolumeFile? defaultMode=2:*i32?",
        "EmptyDirVolumeSource": "medium=1:str? sizeLimit=2:*resource.Quantity?",
        "EndpointAddress": "ip=1:str hostname=3:str? nodeName=4:*str? targetRef=2:*ObjectReference?",
        "EndpointPort": "name=1:str? port=2:i32 protocol=3:str? appProtocol=4:*str?",
        "EndpointSubset": (
            "addresses=1:[]EndpointAddress? notReadyAddresses=2:[]EndpointAddress? "
            "ports=3:[]EndpointPort?"
        ),
        "Endpoints": "metadata=1:meta.v1.ObjectMeta? subsets=2:[]EndpointSubset?",
        "EnvFromSource": (
            "prefix=1:str? configMapRef=2:*ConfigMapEnvSource? secretRef=3:*SecretEnvSource?"
        ),
        "EnvVar": "name=1:str value=2:str? valueFrom=3:*EnvVarSource?",
        "EnvVarSource": (
            "fieldRef=1:*ObjectFieldSelector? resourceFieldRef=2:*ResourceFieldSelector? "
            "configMapKeyRef=3:*ConfigMapKeySelector? secretKeyRef=4:*SecretKeySelector? "
            "fileKeyRef=5:*FileKeySelector?"
        ),
        "EphemeralContainer": "=1:EphemeralContainerCommon targetContainerName=2:str?",
        "EphemeralContainerCommon": (
            "name=1:str image=2:str? command=3:[]str? args=4:[]str? "
            "workingDir=5:str? ports=6:[]ContainerPort? envFrom=19:[]EnvFromSource? env=7:[]EnvVar? "
            "resources=8:ResourceRequirements? resizePolicy=23:[]ContainerResizePolicy? "
            "restartPolicy=24:*str? restartPolicyRules=25:[]ContainerRestartRule? "
            "volumeMounts=9:[]VolumeMount? volumeDevices=21:[]VolumeDevice? livenessProbe=10:*Probe? "
            "readinessProbe=11:*Probe? startupProbe=22:*Probe? lifecycle=12:*Lifecycle? "
            "terminationMessagePath=13:str? terminationMessagePolicy=20:str? imagePullPolicy=14:str? "
            "securityContext=15:*SecurityContext? stdin=16:bool? stdinOnce=17:bool? tty=18:bool?"
        ),
        "EphemeralVolumeSource": "volumeClaimTemplate=1:*PersistentVolumeClaimTemplate?",
        "Event": (
            "metadata=1:meta.v1.ObjectMeta involvedObject=2:ObjectReference reason=3:str? "
            "message=4:str? source=5:EventSource? firstTimestamp=6:meta.v1.Time? "
            "lastTimestamp=7:meta.v1.Time? count=8:i32? type=9:str? eventTime=10:meta.v1.MicroTime? "
            "series=11:*EventSeries? action=12:str? related=13:*ObjectReference? "
            "reportingComponent=14:str reportingInstance=15:str"
        ),
        "EventSeries": "count=1:i32? lastObservedTime=2:meta.v1.MicroTime?",
        "EventSource": "component=1:str? host=2:str?",
        "ExecAction": "command=1:[]str?",
        "FCVolumeSource": (
            "targetWWNs=1:[]str? lun=2:*i32? fsType=3:str? readOnly=4:bool? wwids=5:[]str?"
        ),
        "FileKeySelector": "volumeName=1:str path=2:str key=3:str optional=4:*bool?",
        "FlexPersistentVolumeSource": (
            "driver=1:str fsType=2:str? secretRef=3:*SecretReference? "
            "readOnly=4:bool? options=5:{str}?"
        ),
        "FlexVolumeSource": (
            "driver=1:str fsType=2:str? secretRef=3:*LocalObjectReference? "
            "readOnly=4:bool? options=5:{str}?"
        ),
        "FlockerVolumeSource": "datasetName=1:str? datasetUUID=2:str?",
        "GCEPersistentDiskVolumeSource": (
            "pdName=1:str fsType=2:str? partition=3:i32? readOnly=4:bool?"
        ),
        "GRPCAction": "port=1:i32 service=2:*str",
        "GitRepoVolumeSource": "repository=1:str revision=2:str? directory=3:str?",
        "GlusterfsPersistentVolumeSource": (
            "endpoints=1:str path=2:str readOnly=3:bool? endpointsNamespace=4:*str?"
        ),
        "GlusterfsVolumeSource": "endpoints=1:str path=2:str readOnly=3:bool?",
        "HTTPGetAction": (
            "path=1:str? port=2:intstr.IntOrString host=3:str? scheme=4:str? "
            "httpHeaders=5:[]HTTPHeader?"
        ),
        "HTTPHeader": "name=1:str value=2:str",
        "HostAlias": "ip=1:str hostnames=2:[]str?",
        "HostIP": "ip=1:str",
        "HostPathVolumeSource": "path=1:str type=2:*str?",
        "ISCSIPersistentVolumeSource": (
            "targetPortal=1:str iqn=2:str lun=3:i32 iscsiInterface=4:str? "
            "fsType=5:str? readOnly=6:bool? portals=7:[]str? chapAuthDiscovery=8:bool? "
            "chapAuthSession=11:bool? secretRef=10:*SecretReference? initiatorName=12:*str?"
        ),
        "ISCSIVolumeSource": (
            "targetPortal=1:str iqn=2:str lun=3:i32 iscsiInterface=4:str? "
            "fsType=5:str? readOnly=6:bool? portals=7:[]str? chapAuthDiscovery=8:bool? "
            "chapAuthSession=11:bool? secretRef=10:*LocalObjectReference? initiatorName=12:*str?"
        ),
        "ImageVolumeSource": "reference=1:str? pullPolicy=2:str?",
        "ImageVolumeStatus": "imageRef=1:str?",
        "KeyToPath": "key=1:str path=2:str mode=3:*i32?",
        "Lifecycle": "postStart=1:*LifecycleHandler? preStop=2:*LifecycleHandler? stopSignal=3:*str?",
        "LifecycleHandler": (
            "exec=1:*ExecAction? httpGet=2:*HTTPGetAction? "
            "tcpSocket=3:*TCPSocketAction? sleep=4:*SleepAction?"
        ),
        "LimitRange": "metadata=1:meta.v1.ObjectMeta? spec=2:LimitRangeSpec?",
        "LimitRangeItem": (
            "type=1:str max=2:{resource.Quantity}? min=3:{resource.Quantity}? "
            "default=4:{resource.Quantity}? defaultRequest=5:{resource.Quantity}? "
            "maxLimitRequestRatio=6:{resource.Quantity}?"
        ),
        "LimitRangeSpec": "limits=1:[]LimitRangeItem",
        "LinuxContainerUser": "uid=1:i64 gid=2:i64 supplementalGroups=3:[]i64?",
        "LoadBalancerIngress": "ip=1:str? hostname=2:str? ipMode=3:*str? ports=4:[]PortStatus?",
        "LoadBalancerStatus": "ingress=1:[]LoadBalancerIngress?",
        "LocalObjectReference": "name=1:str?",
        "LocalVolumeSource": "path=1:str fsType=2:*str?",
        "ModifyVolumeStatus": "targetVolumeAttributesClassName=1:str? status=2:str",
        "NFSVolumeSource": "server=1:str path=2:str readOnly=3:bool?",
        "Namespace": "metadata=1:meta.v1.ObjectMeta? spec=2:NamespaceSpec? status=3:NamespaceStatus?",
        "NamespaceCondition": (
            "type=1:str status=2:str lastTransitionTime=4:meta.v1.Time? "
            "reason=5:str? message=6:str?"
        ),
        "NamespaceSpec": "finalizers=1:[]str?",
        "NamespaceStatus": "phase=1:str? conditions=2:[]NamespaceCondition?",
        "Node": "metadata=1:meta.v1.ObjectMeta? spec=2:NodeSpec? status=3:NodeStatus?",
        "NodeAddress": "type=1:str address=2:str",
        "NodeAffinity": (
            "requiredDuringSchedulingIgnoredDuringExecution=1:*NodeSelector? "
            "preferredDuringSchedulingIgnoredDuringExecution=2:[]PreferredSchedulingTerm?"
        ),
        "NodeAllocatableResourceClaimStatus": (
            "resourceClaimName=1:str containers=2:[]str? resources=3:{resource.Quantity}"
        ),
        "NodeCondition": (
            "type=1:str status=2:str lastHeartbeatTime=3:meta.v1.Time? "
            "lastTransitionTime=4:meta.v1.Time? reason=5:str? message=6:str?"
        ),
        "NodeConfigSource": "configMap=2:*ConfigMapNodeConfigSource?",
        "NodeConfigStatus": (
            "assigned=1:*NodeConfigSource? active=2:*NodeConfigSource? "
            "lastKnownGood=3:*NodeConfigSource? error=4:str?"
        ),
        "NodeDaemonEndpoints": "kubeletEndpoint=1:DaemonEndpoint?",
        "NodeFeatures": "supplementalGroupsPolicy=1:*bool?",
        "NodeRuntimeHandler": "name=1:str features=2:*NodeRuntimeHandlerFeatures?",
        "NodeRuntimeHandlerFeatures": "recursiveReadOnlyMounts=1:*bool? userNamespaces=2:*bool?",
        "NodeSelector": "nodeSelectorTerms=1:[]NodeSelectorTerm",
        "NodeSelectorRequirement": "key=1:str operator=2:str values=3:[]str?",
        "NodeSelectorTerm": (
            "matchExpressions=1:[]NodeSelectorRequirement? matchFields=2:[]NodeSelectorRequirement?"
        ),
        "NodeSpec": (
            "podCIDR=1:str? podCIDRs=7:[]str? providerID=3:str? unschedulable=4:bool? "
            "taints=5:[]Taint? configSource=6:*NodeConfigSource? externalID=2:str?"
        ),
        "NodeStatus": (
            "capacity=1:{resource.Quantity}? allocatable=2:{resource.Quantity}? "
            "phase=3:str? conditions=4:[]NodeCondition? addresses=5:[]NodeAddress? "
            "daemonEndpoints=6:NodeDaemonEndpoints? nodeInfo=7:NodeSystemInfo? "
            "images=8:[]ContainerImage? volumesInUse=9:[]str? volumesAttached=10:[]AttachedVolume? "
            "config=11:*NodeConfigStatus? runtimeHandlers=12:[]NodeRuntimeHandler? "
            "features=13:*NodeFeatures? declaredFeatures=14:[]str?"
        ),
        "NodeSwapStatus": "capacity=1:*i64?",
        "NodeSystemInfo": (
            "machineID=1:str systemUUID=2:str bootID=3:str kernelVersion=4:str "
            "osImage=5:str containerRuntimeVersion=6:str kubeletVersion=7:str kubeProxyVersion=8:str "
            "operatingSystem=9:str architecture=10:str swap=11:*NodeSwapStatus?"
        ),
        "ObjectFieldSelector": "apiVersion=1:str? fieldPath=2:str",
        "ObjectReference": (
            "kind=1:str? namespace=2:str? name=3:str? uid=4:str? apiVersion=5:str? "
            "resourceVersion=6:str? fieldPath=7:str?"
        ),
        "PersistentVolume": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:PersistentVolumeSpec? "
            "status=3:PersistentVolumeStatus?"
        ),
        "PersistentVolumeClaim": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:PersistentVolumeClaimSpec? "
            "status=3:PersistentVolumeClaimStatus?"
        ),
        "PersistentVolumeClaimCondition": (
            "type=1:str status=2:str lastProbeTime=3:meta.v1.Time? "
            "lastTransitionTime=4:meta.v1.Time? reason=5:str? message=6:str?"
        ),
        "PersistentVolumeClaimSpec": (
            "accessModes=1:[]str? selector=4:*meta.v1.LabelSelector? "
            "resources=2:VolumeResourceRequirements? volumeName=3:str? storageClassName=5:*str? "
            "volumeMode=6:*str? dataSource=7:*TypedLocalObjectReference? "
            "dataSourceRef=8:*TypedObjectReference? volumeAttributesClassName=9:*str?"
        ),
        "PersistentVolumeClaimStatus": (
            "phase=1:str? accessModes=2:[]str? "
            "capacity=3:{resource.Quantity}? conditions=4:[]PersistentVolumeClaimCondition? "
            "allocatedResources=5:{resource.Quantity}? allocatedResourceStatuses=7:{str}? "
            "currentVolumeAttributesClassName=8:*str? modifyVolumeStatus=9:*ModifyVolumeStatus?"
        ),
        "PersistentVolumeClaimTemplate": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:PersistentVolumeClaimSpec"
        ),
        "PersistentVolumeClaimVolumeSource": "claimName=1:str readOnly=2:bool?",
        "PersistentVolumeSource": (
            "gcePersistentDisk=1:*GCEPersistentDiskVolumeSource? "
            "awsElasticBlockStore=2:*AWSElasticBlockStoreVolumeSource? "
            "hostPath=3:*HostPathVolumeSource? glusterfs=4:*GlusterfsPersistentVolumeSource? "
            "nfs=5:*NFSVolumeSource? rbd=6:*RBDPersistentVolumeSource? "
            "iscsi=7:*ISCSIPersistentVolumeSource? cinder=8:*CinderPersistentVolumeSource? "
            "cephfs=9:*CephFSPersistentVolumeSource? fc=10:*FCVolumeSource? "
            "flocker=11:*FlockerVolumeSource? flexVolume=12:*FlexPersistentVolumeSource? "
            "azureFile=13:*AzureFilePersistentVolumeSource? "
            "vsphereVolume=14:*VsphereVirtualDiskVolumeSource? quobyte=15:*QuobyteVolumeSource? "
            "azureDisk=16:*AzureDiskVolumeSource? "
            "photonPersistentDisk=17:*PhotonPersistentDiskVolumeSource? "
            "portworxVolume=18:*PortworxVolumeSource? scaleIO=19:*ScaleIOPersistentVolumeSource? "
            "local=20:*LocalVolumeSource? storageos=21:*StorageOSPersistentVolumeSource? "
            "csi=22:*CSIPersistentVolumeSource?"
        ),
        "PersistentVolumeSpec": (
            "capacity=1:{resource.Quantity}? =2:PersistentVolumeSource "
            "accessModes=3:[]str? claimRef=4:*ObjectReference? persistentVolumeReclaimPolicy=5:str? "
            "storageClassName=6:str? mountOptions=7:[]str? volumeMode=8:*str? "
            "nodeAffinity=9:*VolumeNodeAffinity? volumeAttributesClassName=10:*str?"
        ),
        "PersistentVolumeStatus": (
            "phase=1:str? message=2:str? reason=3:str? lastPhaseTransitionTime=4:*meta.v1.Time?"
        ),
        "PhotonPersistentDiskVolumeSource": "pdID=1:str fsType=2:str?",
        "Pod": "metadata=1:meta.v1.ObjectMeta? spec=2:PodSpec? status=3:PodStatus?",
        "PodAffinity": (
            "requiredDuringSchedulingIgnoredDuringExecution=1:[]PodAffinityTerm? "
            "preferredDuringSchedulingIgnoredDuringExecution=2:[]WeightedPodAffinityTerm?"
        ),
        "PodAffinityTerm": (
            "labelSelector=1:*meta.v1.LabelSelector? namespaces=2:[]str? "
            "topologyKey=3:str namespaceSelector=4:*meta.v1.LabelSelector? matchLabelKeys=5:[]str? "
            "mismatchLabelKeys=6:[]str?"
        ),
        "PodAntiAffinity": (
            "requiredDuringSchedulingIgnoredDuringExecution=1:[]PodAffinityTerm? "
            "preferredDuringSchedulingIgnoredDuringExecution=2:[]WeightedPodAffinityTerm?"
        ),
        "PodCertificateProjection": (
            "signerName=1:str? keyType=2:str? maxExpirationSeconds=3:*i32? "
            "credentialBundlePath=4:str? keyPath=5:str? certificateChainPath=6:str? "
            "userAnnotations=7:{str}?"
        ),
        "PodCondition": (
            "type=1:str observedGeneration=7:i64? status=2:str "
            "lastProbeTime=3:meta.v1.Time? lastTransitionTime=4:meta.v1.Time? reason=5:str? "
            "message=6:str?"
        ),
        "PodDNSConfig": "nameservers=1:[]str? searches=2:[]str? options=3:[]PodDNSConfigOption?",
        "PodDNSConfigOption": "name=1:str? value=2:*str?",
        "PodExtendedResourceClaimStatus": (
            "requestMappings=1:[]ContainerExtendedResourceRequest resourceClaimName=2:str"
        ),
        "PodIP": "ip=1:str",
        "PodOS": "name=1:str",
        "PodReadinessGate": "conditionType=1:str",
        "PodResourceClaim": "name=1:str resourceClaimName=3:*str? resourceClaimTemplateName=4:*str?",
        "PodResourceClaimStatus": "name=1:str resourceClaimName=2:*str?",
        "PodSchedulingGate": "name=1:str",
        "PodSchedulingGroup": "podGroupName=1:*str?",
        "PodSecurityContext": (
            "seLinuxOptions=1:*SELinuxOptions? "
            "windowsOptions=8:*WindowsSecurityContextOptions? runAsUser=2:*i64? runAsGroup=6:*i64? "
            "runAsNonRoot=3:*bool? supplementalGroups=4:[]i64? supplementalGroupsPolicy=12:*str? "
            "fsGroup=5:*i64? sysctls=7:[]Sysctl? fsGroupChangePolicy=9:*str? "
            "seccompProfile=10:*SeccompProfile? appArmorProfile=11:*AppArmorProfile? "
            "seLinuxChangePolicy=13:*str?"
        ),
        "PodSpec": (
            "volumes=1:[]Volume? initContainers=20:[]Container? containers=2:[]Container "
            "ephemeralContainers=34:[]EphemeralContainer? restartPolicy=3:str? "
            "terminationGracePeriodSeconds=4:*i64? activeDeadlineSeconds=5:*i64? dnsPolicy=6:str? "
            "nodeSelector=7:{str}? serviceAccountName=8:str? serviceAccount=9:str? "
            "automountServiceAccountToken=21:*bool? nodeName=10:str? hostNetwork=11:bool? "
            "hostPID=12:bool? hostIPC=13:bool? shareProcessNamespace=27:*bool? "
            "securityContext=14:*PodSecurityContext? imagePullSecrets=15:[]LocalObjectReference? "
            "hostname=16:str? subdomain=17:str? affinity=18:*Affinity? schedulerName=19:str? "
            "tolerations=22:[]Toleration? hostAliases=23:[]HostAlias? priorityClassName=24:str? "
            "priority=25:*i32? dnsConfig=26:*PodDNSConfig? readinessGates=28:[]PodReadinessGate? "
            "runtimeClassName=29:*str? enableServiceLinks=30:*bool? preemptionPolicy=31:*str? "
            "overhead=32:{resource.Quantity}? "
            "topologySpreadConstraints=33:[]TopologySpreadConstraint? setHostnameAsFQDN=35:*bool? "
            "os=36:*PodOS? hostUsers=37:*bool? schedulingGates=38:[]PodSchedulingGate? "
            "resourceClaims=39:[]PodResourceClaim? resources=40:*ResourceRequirements? "
            "hostnameOverride=41:*str? schedulingGroup=43:*PodSchedulingGroup?"
        ),
        "PodStatus": (
            "observedGeneration=17:i64? phase=1:str? conditions=2:[]PodCondition? "
            "message=3:str? reason=4:str? nominatedNodeName=11:str? hostIP=5:str? "
            "hostIPs=16:[]HostIP? podIP=6:str? podIPs=12:[]PodIP? startTime=7:*meta.v1.Time? "
            "initContainerStatuses=10:[]ContainerStatus? containerStatuses=8:[]ContainerStatus? "
            "qosClass=9:str? ephemeralContainerStatuses=13:[]ContainerStatus? resize=14:str? "
            "resourceClaimStatuses=15:[]PodResourceClaimStatus? "
            "extendedResourceClaimStatus=18:*PodExtendedResourceClaimStatus? "
            "allocatedResources=19:{resource.Quantity}? resources=20:*ResourceRequirements? "
            "nodeAllocatableResourceClaimStatuses=21:[]NodeAllocatableResourceClaimStatus?"
        ),
        "PodTemplate": "metadata=1:meta.v1.ObjectMeta? template=2:PodTemplateSpec?",
        "PodTemplateSpec": "metadata=1:meta.v1.ObjectMeta? spec=2:PodSpec?",
        "PortStatus": "port=1:i32 protocol=2:str error=3:*str?",
        "PortworxVolumeSource": "volumeID=1:str fsType=2:str? readOnly=3:bool?",
        "PreferredSchedulingTerm": "weight=1:i32 preference=2:NodeSelectorTerm",
        "Probe": (
            "=1:ProbeHandler initialDelaySeconds=2:i32? timeoutSeconds=3:i32? "
            "periodSeconds=4:i32? successThreshold=5:i32? failureThreshold=6:i32? "
            "terminationGracePeriodSeconds=7:*i64?"
        ),
        "ProbeHandler": (
            "exec=1:*ExecAction? httpGet=2:*HTTPGetAction? tcpSocket=3:*TCPSocketAction? "
            "grpc=4:*GRPCAction?"
        ),
        "ProjectedVolumeSource": "sources=1:[]VolumeProjection defaultMode=2:*i32?",
        "QuobyteVolumeSource": (
            "registry=1:str volume=2:str readOnly=3:bool? user=4:str? group=5:str? tenant=6:str?"
        ),
        "RBDPersistentVolumeSource": (
            "monitors=1:[]str image=2:str fsType=3:str? pool=4:str? "
            "user=5:str? keyring=6:str? secretRef=7:*SecretReference? readOnly=8:bool?"
        ),
        "RBDVolumeSource": (
            "monitors=1:[]str image=2:str fsType=3:str? pool=4:str? user=5:str? "
            "keyring=6:str? secretRef=7:*LocalObjectReference? readOnly=8:bool?"
        ),
        "ReplicationController": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:ReplicationControllerSpec? "
            "status=3:ReplicationControllerStatus?"
        ),
        "ReplicationControllerCondition": (
            "type=1:str status=2:str lastTransitionTime=3:meta.v1.Time? "
            "reason=4:str? message=5:str?"
        ),
        "ReplicationControllerSpec": (
            "replicas=1:*i32? minReadySeconds=4:i32? selector=2:{str}? template=3:*PodTemplateSpec?"
        ),
        "ReplicationControllerStatus": (
            "replicas=1:i32 fullyLabeledReplicas=2:i32? "
            "readyReplicas=4:i32? availableReplicas=5:i32? observedGeneration=3:i64? "
            "conditions=6:[]ReplicationControllerCondition?"
        ),
        "ResourceClaim": "name=1:str request=2:str?",
        "ResourceFieldSelector": "containerName=1:str? resource=2:str divisor=3:resource.Quantity?",
        "ResourceHealth": "resourceID=1:str health=2:str? message=6:*str?",
        "ResourceQuota": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:ResourceQuotaSpec? status=3:ResourceQuotaStatus?"
        ),
        "ResourceQuotaSpec": (
            "hard=1:{resource.Quantity}? scopes=2:[]str? scopeSelector=3:*ScopeSelector?"
        ),
        "ResourceQuotaStatus": "hard=1:{resource.Quantity}? used=2:{resource.Quantity}?",
        "ResourceRequirements": (
            "limits=1:{resource.Quantity}? requests=2:{resource.Quantity}? "
            "claims=3:[]ResourceClaim?"
        ),
        "ResourceStatus": "name=1:str resources=2:[]ResourceHealth?",
        "SELinuxOptions": "user=1:str? role=2:str? type=3:str? level=4:str?",
        "ScaleIOPersistentVolumeSource": (
            "gateway=1:str system=2:str secretRef=3:*SecretReference "
            "sslEnabled=4:bool? protectionDomain=5:str? storagePool=6:str? storageMode=7:str? "
            "volumeName=8:str? fsType=9:str? readOnly=10:bool?"
        ),
        "ScaleIOVolumeSource": (
            "gateway=1:str system=2:str secretRef=3:*LocalObjectReference "
            "sslEnabled=4:bool? protectionDomain=5:str? storagePool=6:str? storageMode=7:str? "
            "volumeName=8:str? fsType=9:str? readOnly=10:bool?"
        ),
        "ScopeSelector": "matchExpressions=1:[]ScopedResourceSelectorRequirement?",
        "ScopedResourceSelectorRequirement": "scopeName=1:str operator=2:str values=3:[]str?",
        "SeccompProfile": "type=1:str localhostProfile=2:*str?",
        "Secret": (
            "metadata=1:meta.v1.ObjectMeta? immutable=5:*bool? data=2:{bytes}? "
            "stringData=4:{str}? type=3:str?"
        ),
        "SecretEnvSource": "=1:LocalObjectReference optional=2:*bool?",
        "SecretKeySelector": "=1:LocalObjectReference key=2:str optional=3:*bool?",
        "SecretProjection": "=1:LocalObjectReference items=2:[]KeyToPath? optional=4:*bool?",
        "SecretReference": "name=1:str? namespace=2:str?",
        "SecretVolumeSource": (
            "secretName=1:str? items=2:[]KeyToPath? defaultMode=3:*i32? optional=4:*bool?"
        ),
        "SecurityContext": (
            "capabilities=1:*Capabilities? privileged=2:*bool? "
            "seLinuxOptions=3:*SELinuxOptions? windowsOptions=10:*WindowsSecurityContextOptions? "
            "runAsUser=4:*i64? runAsGroup=8:*i64? runAsNonRoot=5:*bool? "
            "readOnlyRootFilesystem=6:*bool? allowPrivilegeEscalation=7:*bool? procMount=9:*str? "
            "seccompProfile=11:*SeccompProfile? appArmorProfile=12:*AppArmorProfile?"
        ),
        "Service": "metadata=1:meta.v1.ObjectMeta? spec=2:ServiceSpec? status=3:ServiceStatus?",
        "ServiceAccount": (
            "metadata=1:meta.v1.ObjectMeta? secrets=2:[]ObjectReference? "
            "imagePullSecrets=3:[]LocalObjectReference? automountServiceAccountToken=4:*bool?"
        ),
        "ServiceAccountTokenProjection": "audience=1:str? expirationSeconds=2:*i64? path=3:str",
        "ServicePort": (
            "name=1:str? protocol=2:str? appProtocol=6:*str? port=3:i32 "
            "targetPort=4:intstr.IntOrString? nodePort=5:i32?"
        ),
        "ServiceSpec": (
            "ports=1:[]ServicePort? selector=2:{str}? clusterIP=3:str? "
            "clusterIPs=18:[]str? type=4:str? externalIPs=5:[]str? sessionAffinity=7:str? "
            "loadBalancerIP=8:str? loadBalancerSourceRanges=9:[]str? externalName=10:str? "
            "externalTrafficPolicy=11:str? healthCheckNodePort=12:i32? "
            "publishNotReadyAddresses=13:bool? sessionAffinityConfig=14:*SessionAffinityConfig? "
            "ipFamilies=19:[]str? ipFamilyPolicy=17:*str? allocateLoadBalancerNodePorts=20:*bool? "
            "loadBalancerClass=21:*str? internalTrafficPolicy=22:*str? trafficDistribution=23:*str?"
        ),
        "ServiceStatus": "loadBalancer=1:LoadBalancerStatus? conditions=2:[]meta.v1.Condition?",
        "SessionAffinityConfig": "clientIP=1:*ClientIPConfig?",
        "SleepAction": "seconds=1:i64",
        "StorageOSPersistentVolumeSource": (
            "volumeName=1:str? volumeNamespace=2:str? fsType=3:str? "
            "readOnly=4:bool? secretRef=5:*ObjectReference?"
        ),
        "StorageOSVolumeSource": (
            "volumeName=1:str? volumeNamespace=2:str? fsType=3:str? "
            "readOnly=4:bool? secretRef=5:*LocalObjectReference?"
        ),
        "Sysctl": "name=1:str value=2:str",
        "TCPSocketAction": "port=1:intstr.IntOrString host=2:str?",
        "Taint": "key=1:str value=2:str? effect=3:str timeAdded=4:*meta.v1.Time?",
        "Toleration": (
            "key=1:str? operator=2:str? value=3:str? effect=4:str? tolerationSeconds=5:*i64?"
        ),
        "TopologySelectorLabelRequirement": "key=1:str values=2:[]str",
        "TopologySelectorTerm": "matchLabelExpressions=1:[]TopologySelectorLabelRequirement?",
        "TopologySpreadConstraint": (
            "maxSkew=1:i32 topologyKey=2:str whenUnsatisfiable=3:str "
            "labelSelector=4:*meta.v1.LabelSelector? minDomains=5:*i32? nodeAffinityPolicy=6:*str? "
            "nodeTaintsPolicy=7:*str? matchLabelKeys=8:[]str?"
        ),
        "TypedLocalObjectReference": "apiGroup=1:*str kind=2:str name=3:str",
        "TypedObjectReference": "apiGroup=1:*str kind=2:str name=3:str namespace=4:*str?",
        "Volume": "name=1:str =2:VolumeSource",
        "VolumeDevice": "name=1:str devicePath=2:str",
        "VolumeMount": (
            "name=1:str readOnly=2:bool? recursiveReadOnly=7:*str? mountPath=3:str "
            "subPath=4:str? mountPropagation=5:*str? subPathExpr=6:str?"
        ),
        "VolumeMountStatus": (
            "name=1:str mountPath=2:str readOnly=3:bool? recursiveReadOnly=4:*str? "
            "volumeStatus=5:*VolumeStatus?"
        ),
        "VolumeNodeAffinity": "required=1:*NodeSelector?",
        "VolumeProjection": (
            "secret=1:*SecretProjection? downwardAPI=2:*DownwardAPIProjection? "
            "configMap=3:*ConfigMapProjection? serviceAccountToken=4:*ServiceAccountTokenProjection? "
            "clusterTrustBundle=5:*ClusterTrustBundleProjection? "
            "podCertificate=6:*PodCertificateProjection?"
        ),
        "VolumeResourceRequirements": "limits=1:{resource.Quantity}? requests=2:{resource.Quantity}?",
        "VolumeSource": (
            "hostPath=1:*HostPathVolumeSource? emptyDir=2:*EmptyDirVolumeSource? "
            "gcePersistentDisk=3:*GCEPersistentDiskVolumeSource? "
            "awsElasticBlockStore=4:*AWSElasticBlockStoreVolumeSource? "
            "gitRepo=5:*GitRepoVolumeSource? secret=6:*SecretVolumeSource? nfs=7:*NFSVolumeSource? "
            "iscsi=8:*ISCSIVolumeSource? glusterfs=9:*GlusterfsVolumeSource? "
            "persistentVolumeClaim=10:*PersistentVolumeClaimVolumeSource? rbd=11:*RBDVolumeSource? "
            "flexVolume=12:*FlexVolumeSource? cinder=13:*CinderVolumeSource? "
            "cephfs=14:*CephFSVolumeSource? flocker=15:*FlockerVolumeSource? "
            "downwardAPI=16:*DownwardAPIVolumeSource? fc=17:*FCVolumeSource? "
            "azureFile=18:*AzureFileVolumeSource? configMap=19:*ConfigMapVolumeSource? "
            "vsphereVolume=20:*VsphereVirtualDiskVolumeSource? quobyte=21:*QuobyteVolumeSource? "
            "azureDisk=22:*AzureDiskVolumeSource? "
            "photonPersistentDisk=23:*PhotonPersistentDiskVolumeSource? "
            "projected=26:*ProjectedVolumeSource? portworxVolume=24:*PortworxVolumeSource? "
            "scaleIO=25:*ScaleIOVolumeSource? storageos=27:*StorageOSVolumeSource? "
            "csi=28:*CSIVolumeSource? ephemeral=29:*EphemeralVolumeSource? "
            "image=30:*ImageVolumeSource?"
        ),
        "VolumeStatus": "image=1:*ImageVolumeStatus?",
        "VsphereVirtualDiskVolumeSource": (
            "volumePath=1:str fsType=2:str? storagePolicyName=3:str? storagePolicyID=4:str?"
        ),
        "WeightedPodAffinityTerm": "weight=1:i32 podAffinityTerm=2:PodAffinityTerm",
        "WindowsSecurityContextOptions": (
            "gmsaCredentialSpecName=1:*str? gmsaCredentialSpec=2:*str? "
            "runAsUserName=3:*str? hostProcess=4:*bool?"
        ),
    },
    "apps.v1": {
        "ControllerRevision": (
            "metadata=1:meta.v1.ObjectMeta? data=2:runtime.RawExtension? revision=3:i64"
        ),
        "DaemonSet": "metadata=1:meta.v1.ObjectMeta? spec=2:DaemonSetSpec? status=3:DaemonSetStatus?",
        "DaemonSetCondition": (
            "type=1:str status=2:str lastTransitionTime=3:meta.v1.Time? "
            "reason=4:str? message=5:str?"
        ),
        "DaemonSetSpec": (
            "selector=1:*meta.v1.LabelSelector template=2:core.v1.PodTemplateSpec "
            "updateStrategy=3:DaemonSetUpdateStrategy? minReadySeconds=4:i32? "
            "revisionHistoryLimit=6:*i32?"
        ),
        "DaemonSetStatus": (
            "currentNumberScheduled=1:i32 numberMisscheduled=2:i32 "
            "desiredNumberScheduled=3:i32 numberReady=4:i32 observedGeneration=5:i64? "
            "updatedNumberScheduled=6:i32? numberAvailable=7:i32? numberUnavailable=8:i32? "
            "collisionCount=9:*i32? conditions=10:[]DaemonSetCondition?"
        ),
        "DaemonSetUpdateStrategy": "type=1:str? rollingUpdate=2:*RollingUpdateDaemonSet?",
        "Deployment": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:DeploymentSpec? status=3:DeploymentStatus?"
        ),
        "DeploymentCondition": (
            "type=1:str status=2:str lastUpdateTime=6:meta.v1.Time? "
            "lastTransitionTime=7:meta.v1.Time? reason=4:str? message=5:str?"
        ),
        "DeploymentSpec": (
            "replicas=1:*i32? selector=2:*meta.v1.LabelSelector "
            "template=3:core.v1.PodTemplateSpec strategy=4:DeploymentStrategy? minReadySeconds=5:i32? "
            "revisionHistoryLimit=6:*i32? paused=7:bool? progressDeadlineSeconds=9:*i32?"
        ),
        "DeploymentStatus": (
            "observedGeneration=1:i64? replicas=2:i32? updatedReplicas=3:i32? "
            "readyReplicas=7:i32? availableReplicas=4:i32? unavailableReplicas=5:i32? "
            "terminatingReplicas=9:*i32? conditions=6:[]DeploymentCondition? collisionCount=8:*i32?"
        ),
        "DeploymentStrategy": "type=1:str? rollingUpdate=2:*RollingUpdateDeployment?",
        "ReplicaSet": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:ReplicaSetSpec? status=3:ReplicaSetStatus?"
        ),
        "ReplicaSetCondition": (
            "type=1:str status=2:str lastTransitionTime=3:meta.v1.Time? "
            "reason=4:str? message=5:str?"
        ),
        "ReplicaSetSpec": (
            "replicas=1:*i32? minReadySeconds=4:i32? selector=2:*meta.v1.LabelSelector "
            "template=3:core.v1.PodTemplateSpec?"
        ),
        "ReplicaSetStatus": (
            "replicas=1:i32 fullyLabeledReplicas=2:i32? readyReplicas=4:i32? "
            "availableReplicas=5:i32? terminatingReplicas=7:*i32? observedGeneration=3:i64? "
            "conditions=6:[]ReplicaSetCondition?"
        ),
        "RollingUpdateDaemonSet": (
            "maxUnavailable=1:*intstr.IntOrString? maxSurge=2:*intstr.IntOrString?"
        ),
        "RollingUpdateDeployment": (
            "maxUnavailable=1:*intstr.IntOrString? maxSurge=2:*intstr.IntOrString?"
        ),
        "RollingUpdateStatefulSetStrategy": "partition=1:*i32? maxUnavailable=2:*intstr.IntOrString?",
        "StatefulSet": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:StatefulSetSpec? status=3:StatefulSetStatus?"
        ),
        "StatefulSetCondition": (
            "type=1:str status=2:str lastTransitionTime=3:meta.v1.Time? "
            "reason=4:str? message=5:str?"
        ),
        "StatefulSetOrdinals": "start=1:i32",
        "StatefulSetPersistentVolumeClaimRetentionPolicy": "whenDeleted=1:str? whenScaled=2:str?",
        "StatefulSetSpec": (
            "replicas=1:*i32? selector=2:*meta.v1.LabelSelector "
            "template=3:core.v1.PodTemplateSpec "
            "volumeClaimTemplates=4:[]core.v1.PersistentVolumeClaim? serviceName=5:str "
            "podManagementPolicy=6:str? updateStrategy=7:StatefulSetUpdateStrategy? "
            "revisionHistoryLimit=8:*i32? minReadySeconds=9:i32? "
            "persistentVolumeClaimRetentionPolicy=10:*StatefulSetPersistentVolumeClaimRetentionPolicy? "
            "ordinals=11:*StatefulSetOrdinals?"
        ),
        "StatefulSetStatus": (
            "observedGeneration=1:i64? replicas=2:i32 readyReplicas=3:i32? "
            "currentReplicas=4:i32? updatedReplicas=5:i32? currentRevision=6:str? "
            "updateRevision=7:str? collisionCount=9:*i32? conditions=10:[]StatefulSetCondition? "
            "availableReplicas=11:i32"
        ),
        "StatefulSetUpdateStrategy": "type=1:str? rollingUpdate=2:*RollingUpdateStatefulSetStrategy?",
    },
    "authentication.v1": {
        "BoundObjectReference": "kind=1:str? apiVersion=2:str? name=3:str? uid=4:str?",
        "ExtraValue": "=1:[]str",
        "SelfSubjectReview": "metadata=1:meta.v1.ObjectMeta? status=2:SelfSubjectReviewStatus?",
        "SelfSubjectReviewStatus": "userInfo=1:UserInfo?",
        "TokenRequest": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:TokenRequestSpec status=3:TokenRequestStatus?"
        ),
        "TokenRequestSpec": (
            "audiences=1:[]str expirationSeconds=4:*i64 boundObjectRef=3:*BoundObjectReference"
        ),
        "TokenRequestStatus": "token=1:str expirationTimestamp=2:meta.v1.Time",
        "TokenReview": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:TokenReviewSpec status=3:TokenReviewStatus?"
        ),
        "TokenReviewSpec": "token=1:str? audiences=2:[]str?",
        "TokenReviewStatus": "authenticated=1:bool? user=2:UserInfo? audiences=4:[]str? error=3:str?",
        "UserInfo": "username=1:str? uid=2:str? groups=3:[]str? extra=4:{ExtraValue}?",
    },
    "authorization.v1": {
        "ExtraValue": "=1:[]str",
        "FieldSelectorAttributes": (
            "rawSelector=1:str? requirements=2:[]meta.v1.FieldSelectorRequirement?"
        ),
        "LabelSelectorAttributes": (
            "rawSelector=1:str? requirements=2:[]meta.v1.LabelSelectorRequirement?"
        ),
        "LocalSubjectAccessReview": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:SubjectAccessReviewSpec "
            "status=3:SubjectAccessReviewStatus?"
        ),
        "NonResourceAttributes": "path=1:str? verb=2:str?",
        "NonResourceRule": "verbs=1:[]str nonResourceURLs=2:[]str?",
        "ResourceAttributes": (
            "namespace=1:str? verb=2:str? group=3:str? version=4:str? "
            "resource=5:str? subresource=6:str? name=7:str? fieldSelector=8:*FieldSelectorAttributes? "
            "labelSelector=9:*LabelSelectorAttributes?"
        ),
        "ResourceRule": "verbs=1:[]str apiGroups=2:[]str? resources=3:[]str? resourceNames=4:[]str?",
        "SelfSubjectAccessReview": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:SelfSubjectAccessReviewSpec "
            "status=3:SubjectAccessReviewStatus?"
        ),
        "SelfSubjectAccessReviewSpec": (
            "resourceAttributes=1:*ResourceAttributes? "
            "nonResourceAttributes=2:*NonResourceAttributes?"
        ),
        "SelfSubjectRulesReview": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:SelfSubjectRulesReviewSpec "
            "status=3:SubjectRulesReviewStatus?"
        ),
        "SelfSubjectRulesReviewSpec": "namespace=1:str?",
        "SubjectAccessReview": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:SubjectAccessReviewSpec "
            "status=3:SubjectAccessReviewStatus?"
        ),
        "SubjectAccessReviewSpec": (
            "resourceAttributes=1:*ResourceAttributes? "
            "nonResourceAttributes=2:*NonResourceAttributes? user=3:str? groups=4:[]str? "
            "extra=5:{ExtraValue}? uid=6:str?"
        ),
        "SubjectAccessReviewStatus": (
            "allowed=1:bool denied=4:bool? reason=2:str? evaluationError=3:str?"
        ),
        "SubjectRulesReviewStatus": (
            "resourceRules=1:[]ResourceRule "
            "nonResourceRules=2:[]NonResourceRule incomplete=3:bool evaluationError=4:str?"
        ),
    },
    "autoscaling.v1": {
        "CrossVersionObjectReference": "kind=1:str name=2:str apiVersion=3:str?",
        "HorizontalPodAutoscaler": (
            "metadata=1:meta.v1.ObjectMeta? "
            "spec=2:HorizontalPodAutoscalerSpec? status=3:HorizontalPodAutoscalerStatus?"
        ),
        "HorizontalPodAutoscalerSpec": (
            "scaleTargetRef=1:CrossVersionObjectReference "
            "minReplicas=2:*i32? maxReplicas=3:i32 targetCPUUtilizationPercentage=4:*i32?"
        ),
        "HorizontalPodAutoscalerStatus": (
            "observedGeneration=1:*i64? lastScaleTime=2:*meta.v1.Time? "
            "currentReplicas=3:i32 desiredReplicas=4:i32 currentCPUUtilizationPercentage=5:*i32?"
        ),
        "Scale": "metadata=1:meta.v1.ObjectMeta? spec=2:ScaleSpec? status=3:ScaleStatus?",
        "ScaleSpec": "replicas=1:i32?",
        "ScaleStatus": "replicas=1:i32 selector=2:str?",
    },
    "autoscaling.v2": {
        "ContainerResourceMetricSource": "name=1:str target=2:MetricTarget container=3:str",
        "ContainerResourceMetricStatus": "name=1:str current=2:MetricValueStatus container=3:str",
        "CrossVersionObjectReference": "kind=1:str name=2:str apiVersion=3:str?",
        "ExternalMetricSource": "metric=1:MetricIdentifier target=2:MetricTarget",
        "ExternalMetricStatus": "metric=1:MetricIdentifier current=2:MetricValueStatus",
        "HPAScalingPolicy": "type=1:str value=2:i32 periodSeconds=3:i32",
        "HPAScalingRules": (
            "stabilizationWindowSeconds=3:*i32? selectPolicy=1:*str? "
            "policies=2:[]HPAScalingPolicy? tolerance=4:*resource.Quantity?"
        ),
        "HorizontalPodAutoscaler": (
            "metadata=1:meta.v1.ObjectMeta? "
            "spec=2:HorizontalPodAutoscalerSpec? status=3:HorizontalPodAutoscalerStatus?"
        ),
        "HorizontalPodAutoscalerBehavior": "scaleUp=1:*HPAScalingRules? scaleDown=2:*HPAScalingRules?",
        "HorizontalPodAutoscalerCondition": (
            "type=1:str status=2:str "
            "lastTransitionTime=3:meta.v1.Time? reason=4:str? message=5:str?"
        ),
        "HorizontalPodAutoscalerSpec": (
            "scaleTargetRef=1:CrossVersionObjectReference "
            "minReplicas=2:*i32? maxReplicas=3:i32 metrics=4:[]MetricSpec? "
            "behavior=5:*HorizontalPodAutoscalerBehavior?"
        ),
        "HorizontalPodAutoscalerStatus": (
            "observedGeneration=1:*i64? lastScaleTime=2:*meta.v1.Time? "
            "currentReplicas=3:i32? desiredReplicas=4:i32 currentMetrics=5:[]MetricStatus "
            "conditions=6:[]HorizontalPodAutoscalerCondition?"
        ),
        "MetricIdentifier": "name=1:str selector=2:*meta.v1.LabelSelector?",
        "MetricSpec": (
            "type=1:str object=2:*ObjectMetricSource? pods=3:*PodsMetricSource? "
            "resource=4:*ResourceMetricSource? containerResource=7:*ContainerResourceMetricSource? "
            "external=5:*ExternalMetricSource?"
        ),
        "MetricStatus": (
            "type=1:str object=2:*ObjectMetricStatus? pods=3:*PodsMetricStatus? "
            "resource=4:*ResourceMetricStatus? containerResource=7:*ContainerResourceMetricStatus? "
            "external=5:*ExternalMetricStatus?"
        ),
        "MetricTarget": (
            "type=1:str value=2:*resource.Quantity? averageValue=3:*resource.Quantity? "
            "averageUtilization=4:*i32?"
        ),
        "MetricValueStatus": (
            "value=1:*resource.Quantity? averageValue=2:*resource.Quantity? "
            "averageUtilization=3:*i32?"
        ),
        "ObjectMetricSource": (
            "describedObject=1:CrossVersionObjectReference target=2:MetricTarget "
            "metric=3:MetricIdentifier"
        ),
        "ObjectMetricStatus": (
            "metric=1:MetricIdentifier current=2:MetricValueStatus "
            "describedObject=3:CrossVersionObjectReference"
        ),
        "PodsMetricSource": "metric=1:MetricIdentifier target=2:MetricTarget",
        "PodsMetricStatus": "metric=1:MetricIdentifier current=2:MetricValueStatus",
        "ResourceMetricSource": "name=1:str target=2:MetricTarget",
        "ResourceMetricStatus": "name=1:str current=2:MetricValueStatus",
    },
    "batch.v1": {
        "CronJob": "metadata=1:meta.v1.ObjectMeta? spec=2:CronJobSpec? status=3:CronJobStatus?",
        "CronJobSpec": (
            "schedule=1:str timeZone=8:*str? startingDeadlineSeconds=2:*i64? "
            "concurrencyPolicy=3:str? suspend=4:*bool? jobTemplate=5:JobTemplateSpec "
            "successfulJobsHistoryLimit=6:*i32? failedJobsHistoryLimit=7:*i32?"
        ),
        "CronJobStatus": (
            "active=1:[]core.v1.ObjectReference? lastScheduleTime=4:*meta.v1.Time? "
            "lastSuccessfulTime=5:*meta.v1.Time?"
        ),
        "Job": "metadata=1:meta.v1.ObjectMeta? spec=2:JobSpec? status=3:JobStatus?",
        "JobCondition": (
            "type=1:str status=2:str lastProbeTime=3:meta.v1.Time? "
            "lastTransitionTime=4:meta.v1.Time? reason=5:str? message=6:str?"
        ),
        "JobSpec": (
            "parallelism=1:*i32? completions=2:*i32? activeDeadlineSeconds=3:*i64? "
            "podFailurePolicy=11:*PodFailurePolicy? successPolicy=16:*SuccessPolicy? "
            "backoffLimit=7:*i32? backoffLimitPerIndex=12:*i32? maxFailedIndexes=13:*i32? "
            "selector=4:*meta.v1.LabelSelector? manualSelector=5:*bool? "
            "template=6:core.v1.PodTemplateSpec ttlSecondsAfterFinished=8:*i32? "
            "completionMode=9:*str? suspend=10:*bool? podReplacementPolicy=14:*str? "
            "managedBy=15:*str?"
        ),
        "JobStatus": (
            "conditions=1:[]JobCondition? startTime=2:*meta.v1.Time? "
            "completionTime=3:*meta.v1.Time? active=4:i32? succeeded=5:i32? failed=6:i32? "
            "terminating=11:*i32? completedIndexes=7:str? failedIndexes=10:*str? "
            "uncountedTerminatedPods=8:*UncountedTerminatedPods? ready=9:*i32?"
        ),
        "JobTemplateSpec": "metadata=1:meta.v1.ObjectMeta? spec=2:JobSpec?",
        "PodFailurePolicy": "rules=1:[]PodFailurePolicyRule",
        "PodFailurePolicyOnExitCodesRequirement": (
            "containerName=1:*str? operator=2:str values=3:[]i32"
        ),
        "PodFailurePolicyOnPodConditionsPattern": "type=1:str status=2:str",
        "PodFailurePolicyRule": (
            "action=1:str onExitCodes=2:*PodFailurePolicyOnExitCodesRequirement? "
            "onPodConditions=3:[]PodFailurePolicyOnPodConditionsPattern?"
        ),
        "SuccessPolicy": "rules=1:[]SuccessPolicyRule",
        "SuccessPolicyRule": "succeededIndexes=1:*str? succeededCount=2:*i32?",
        "UncountedTerminatedPods": "succeeded=1:[]str? failed=2:[]str?",
    },
    "coordination.v1": {
        "Lease": "metadata=1:meta.v1.ObjectMeta? spec=2:LeaseSpec?",
        "LeaseSpec": (
            "holderIdentity=1:*str? leaseDurationSeconds=2:*i32? "
            "acquireTime=3:*meta.v1.MicroTime? renewTime=4:*meta.v1.MicroTime? "
            "leaseTransitions=5:*i32? strategy=6:*str? preferredHolder=7:*str?"
        ),
    },
    "discovery.v1": {
        "Endpoint": (
            "addresses=1:[]str conditions=2:EndpointConditions? hostname=3:*str? "
            "targetRef=4:*core.v1.ObjectReference? deprecatedTopology=5:{str}? nodeName=6:*str? "
            "zone=7:*str? hints=8:*EndpointHints?"
        ),
        "EndpointConditions": "ready=1:*bool? serving=2:*bool? terminating=3:*bool?",
        "EndpointHints": "forZones=1:[]ForZone? forNodes=2:[]ForNode?",
        "EndpointPort": "name=1:*str? protocol=2:*str? port=3:*i32? appProtocol=4:*str?",
        "EndpointSlice": (
            "metadata=1:meta.v1.ObjectMeta? addressType=4:str endpoints=2:[]Endpoint "
            "ports=3:[]EndpointPort"
        ),
        "ForNode": "name=1:str",
        "ForZone": "name=1:str",
    },
    "events.v1": {
        "Event": (
            "metadata=1:meta.v1.ObjectMeta eventTime=2:meta.v1.MicroTime series=3:*EventSeries? "
            "reportingController=4:str? reportingInstance=5:str? action=6:str? reason=7:str? "
            "regarding=8:core.v1.ObjectReference? related=9:*core.v1.ObjectReference? note=10:str? "
            "type=11:str? deprecatedSource=12:core.v1.EventSource? "
            "deprecatedFirstTimestamp=13:meta.v1.Time? deprecatedLastTimestamp=14:meta.v1.Time? "
            "deprecatedCount=15:i32?"
        ),
        "EventSeries": "count=1:i32 lastObservedTime=2:meta.v1.MicroTime",
    },
    "networking.v1": {
        "HTTPIngressPath": "path=1:str? pathType=3:*str backend=2:IngressBackend",
        "HTTPIngressRuleValue": "paths=1:[]HTTPIngressPath",
        "IPBlock": "cidr=1:str except=2:[]str?",
        "Ingress": "metadata=1:meta.v1.ObjectMeta? spec=2:IngressSpec? status=3:IngressStatus?",
        "IngressBackend": (
            "service=4:*IngressServiceBackend? resource=3:*core.v1.TypedLocalObjectReference?"
        ),
        "IngressClass": "metadata=1:meta.v1.ObjectMeta? spec=2:IngressClassSpec?",
        "IngressClassParametersReference": (
            "apiGroup=1:*str? kind=2:str name=3:str scope=4:*str namespace=5:*str?"
        ),
        "IngressClassSpec": "controller=1:str? parameters=2:*IngressClassParametersReference?",
        "IngressLoadBalancerIngress": "ip=1:str? hostname=2:str? ports=4:[]IngressPortStatus?",
        "IngressLoadBalancerStatus": "ingress=1:[]IngressLoadBalancerIngress?",
        "IngressPortStatus": "port=1:i32 protocol=2:str error=3:*str?",
        "IngressRule": "host=1:str? =2:IngressRuleValue",
        "IngressRuleValue": "http=1:*HTTPIngressRuleValue?",
        "IngressServiceBackend": "name=1:str port=2:ServiceBackendPort?",
        "IngressSpec": (
            "ingressClassName=4:*str? defaultBackend=1:*IngressBackend? "
            "tls=2:[]IngressTLS? rules=3:[]IngressRule?"
        ),
        "IngressStatus": "loadBalancer=1:IngressLoadBalancerStatus?",
        "IngressTLS": "hosts=1:[]str? secretName=2:str?",
        "NetworkPolicy": "metadata=1:meta.v1.ObjectMeta? spec=2:NetworkPolicySpec?",
        "NetworkPolicyEgressRule": "ports=1:[]NetworkPolicyPort? to=2:[]NetworkPolicyPeer?",
        "NetworkPolicyIngressRule": "ports=1:[]NetworkPolicyPort? from=2:[]NetworkPolicyPeer?",
        "NetworkPolicyPeer": (
            "podSelector=1:*meta.v1.LabelSelector? "
            "namespaceSelector=2:*meta.v1.LabelSelector? ipBlock=3:*IPBlock?"
        ),
        "NetworkPolicyPort": "protocol=1:*str? port=2:*intstr.IntOrString? endPort=3:*i32?",
        "NetworkPolicySpec": (
            "podSelector=1:meta.v1.LabelSelector "
            "ingress=2:[]NetworkPolicyIngressRule? egress=3:[]NetworkPolicyEgressRule? "
            "policyTypes=4:[]str?"
        ),
        "ServiceBackendPort": "name=1:str? number=2:i32?",
    },
    "node.v1": {
        "Overhead": "podFixed=1:{resource.Quantity}?",
        "RuntimeClass": (
            "metadata=1:meta.v1.ObjectMeta? handler=2:str overhead=3:*Overhead? "
            "scheduling=4:*Scheduling?"
        ),
        "Scheduling": "nodeSelector=1:{str}? tolerations=2:[]core.v1.Toleration?",
    },
    "policy.v1": {
        "Eviction": "metadata=1:meta.v1.ObjectMeta? deleteOptions=2:*meta.v1.DeleteOptions?",
        "PodDisruptionBudget": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:PodDisruptionBudgetSpec? "
            "status=3:PodDisruptionBudgetStatus?"
        ),
        "PodDisruptionBudgetSpec": (
            "minAvailable=1:*intstr.IntOrString? "
            "selector=2:*meta.v1.LabelSelector? maxUnavailable=3:*intstr.IntOrString? "
            "unhealthyPodEvictionPolicy=4:*str?"
        ),
        "PodDisruptionBudgetStatus": (
            "observedGeneration=1:i64? disruptedPods=2:{meta.v1.Time}? "
            "disruptionsAllowed=3:i32 currentHealthy=4:i32 desiredHealthy=5:i32 expectedPods=6:i32 "
            "conditions=7:[]meta.v1.Condition?"
        ),
    },
    "rbac.v1": {
        "AggregationRule": "clusterRoleSelectors=1:[]meta.v1.LabelSelector?",
        "ClusterRole": (
            "metadata=1:meta.v1.ObjectMeta? rules=2:[]PolicyRule "
            "aggregationRule=3:*AggregationRule?"
        ),
        "ClusterRoleBinding": "metadata=1:meta.v1.ObjectMeta? subjects=2:[]Subject? roleRef=3:RoleRef",
        "PolicyRule": (
            "verbs=1:[]str apiGroups=2:[]str? resources=3:[]str? resourceNames=4:[]str? "
            "nonResourceURLs=5:[]str?"
        ),
        "Role": "metadata=1:meta.v1.ObjectMeta? rules=2:[]PolicyRule",
        "RoleBinding": "metadata=1:meta.v1.ObjectMeta? subjects=2:[]Subject? roleRef=3:RoleRef",
        "RoleRef": "apiGroup=1:str kind=2:str name=3:str",
        "Subject": "kind=1:str apiGroup=2:str? name=3:str namespace=4:str?",
    },
    "scheduling.v1": {
        "PriorityClass": (
            "metadata=1:meta.v1.ObjectMeta? value=2:i32 globalDefault=3:bool? "
            "description=4:str? preemptionPolicy=5:*str?"
        ),
    },
    "storage.v1": {
        "StorageClass": (
            "metadata=1:meta.v1.ObjectMeta? provisioner=2:str parameters=3:{str}? "
            "reclaimPolicy=4:*str? mountOptions=5:[]str? allowVolumeExpansion=6:*bool? "
            "volumeBindingMode=7:*str? allowedTopologies=8:[]core.v1.TopologySelectorTerm?"
        ),
    },
}

# (apiVersion, kind) -> "package.Message", one entry per kind.
KINDS: dict[tuple[str, str], str] = {}


def _kinds(api_version: str, package: str, names: str) -> None:
    for name in names.split():
        KINDS[(api_version, name)] = f"{package}.{name}"


_kinds(
    "v1",
    "core.v1",
    "Pod PodTemplate ReplicationController Service Endpoints Node Namespace ConfigMap Secret "
    "ServiceAccount Event PersistentVolume PersistentVolumeClaim ResourceQuota LimitRange Binding",
)
_kinds("apps/v1", "apps.v1", "Deployment ReplicaSet StatefulSet DaemonSet ControllerRevision")
_kinds("autoscaling/v1", "autoscaling.v1", "HorizontalPodAutoscaler Scale")
_kinds("autoscaling/v2", "autoscaling.v2", "HorizontalPodAutoscaler")
_kinds("batch/v1", "batch.v1", "Job CronJob")
_kinds("policy/v1", "policy.v1", "Eviction PodDisruptionBudget")
_kinds("scheduling.k8s.io/v1", "scheduling.v1", "PriorityClass")
_kinds("node.k8s.io/v1", "node.v1", "RuntimeClass")
_kinds("coordination.k8s.io/v1", "coordination.v1", "Lease")
_kinds("discovery.k8s.io/v1", "discovery.v1", "EndpointSlice")
_kinds("events.k8s.io/v1", "events.v1", "Event")
_kinds(
    "authentication.k8s.io/v1", "authentication.v1", "TokenRequest TokenReview SelfSubjectReview"
)
_kinds(
    "authorization.k8s.io/v1",
    "authorization.v1",
    "SubjectAccessReview SelfSubjectAccessReview LocalSubjectAccessReview SelfSubjectRulesReview",
)
_kinds("rbac.authorization.k8s.io/v1", "rbac.v1", "Role ClusterRole RoleBinding ClusterRoleBinding")
_kinds("networking.k8s.io/v1", "networking.v1", "Ingress IngressClass NetworkPolicy")
_kinds("storage.k8s.io/v1", "storage.v1", "StorageClass")

# Kinds that every group version registers (client-go sends them with the
# group version of the resource they act on).
ANY_VERSION_KINDS: dict[str, str] = {"DeleteOptions": "meta.v1.DeleteOptions"}
