"""A pod's status as the kubelet reports it, computed from what the agent knows.

:class:`ContainerRecord` is the agent's view of one container (the runtime
handle, its last known :class:`~cloudlet.runtime.interface.ContainerStatus`,
restart count, waiting reason, probe results). :func:`container_status` turns
it into a ``ContainerStatus``; :func:`pod_phase` is the kubelet's
``getPhase``; :func:`pod_status` assembles ``status`` with the conditions
``PodReadyToStartContainers``, ``Initialized``, ``ContainersReady``, ``Ready``
(and keeps the scheduler's ``PodScheduled``), ``podIP(s)``, ``hostIP(s)``,
``qosClass`` and ``startTime``. A condition's ``lastTransitionTime`` moves
only when its status changes, so an unchanged pod yields an identical status
and the agent can skip the write.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudlet.resources.podspec import pod_qos_class
from cloudlet.runtime.interface import ContainerStatus, Handle

Obj = dict[str, Any]


def rfc3339(ts: float | None = None) -> str:
    t = datetime.fromtimestamp(ts, UTC) if ts is not None else datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Terminated:
    exit_code: int
    reason: str
    message: str
    started_at: float | None
    finished_at: float | None
    container_id: str

    def to_state(self) -> Obj:
        out: Obj = {"exitCode": self.exit_code, "reason": self.reason,
                    "startedAt": rfc3339(self.started_at) if self.started_at else None,
                    "finishedAt": rfc3339(self.finished_at) if self.finished_at else None,
                    "containerID": self.container_id}
        if self.message:
            out["message"] = self.message
        return {"terminated": out}


@dataclass
class ContainerRecord:
    """What the agent knows of one container of a pod."""

    name: str
    init: bool = False
    handle: Handle | None = None
    status: ContainerStatus | None = None  # latest from the runtime
    restart_count: int = 0
    attempt: int = 0  # next log file number / snapshot key part
    waiting_reason: str = ""  # ContainerCreating, CrashLoopBackOff, ErrImagePull, ...
    waiting_message: str = ""
    last_terminated: Terminated | None = None
    image: str = ""
    image_id: str = ""
    ready: bool = False  # readiness result
    started: bool = False  # startup result
    spec_hash: str = ""
    snapshot: str = ""
    log_path: str = ""
    prev_log_path: str = ""
    exit_event: Any = field(default=None, repr=False)  # the wait task

    @property
    def container_id(self) -> str:
        return f"{self.handle.handler}://{self.handle.id}" if self.handle else ""

    @property
    def running(self) -> bool:
        return self.handle is not None and self.status is not None and self.status.state == "running"

    @property
    def exited(self) -> bool:
        return self.handle is not None and self.status is not None and self.status.state == "exited"

    def terminated(self) -> Terminated | None:
        st = self.status
        if st is None or st.state != "exited":
            return None
        code = st.exit_code if st.exit_code is not None else 0
        reason = st.reason or ("Completed" if code == 0 else "Error")
        return Terminated(code, reason, st.message, st.started_at, st.finished_at, self.container_id)


def container_status(rec: ContainerRecord, spec_image: str) -> Obj:
    state: Obj
    term = rec.terminated()
    if rec.waiting_reason:
        state = {"waiting": {"reason": rec.waiting_reason, **({"message": rec.waiting_message} if rec.waiting_message else {})}}
    elif rec.running and rec.status is not None:
        state = {"running": {"startedAt": rfc3339(rec.status.started_at)}}
    elif term is not None:
        state = term.to_state()
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    last: Obj = {}
    if rec.waiting_reason and term is not None:
        last = term.to_state()
    elif rec.last_terminated is not None:
        last = rec.last_terminated.to_state()
    out: Obj = {
        "name": rec.name,
        "state": state,
        "lastState": last,
        "ready": bool(rec.ready and rec.running),
        "restartCount": rec.restart_count,
        "image": rec.image or spec_image,
        "imageID": rec.image_id,
        "started": bool(rec.started and rec.running),
    }
    if rec.handle is not None:
        out["containerID"] = rec.container_id
    return out


def pod_phase(pod: Obj, init_statuses: list[Obj], statuses: list[Obj]) -> str:
    """The kubelet's ``getPhase`` (without sidecar containers)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    pending_init = 0
    failed_init = 0
    for s in init_statuses:
        st = s.get("state") or {}
        if "terminated" in st:
            if st["terminated"].get("exitCode") == 0:
                continue
            failed_init += 1
        elif "waiting" in st:
            last = (s.get("lastState") or {}).get("terminated")
            if last is not None and last.get("exitCode") != 0:
                failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or failed_init:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for s in statuses:
        st = s.get("state") or {}
        if "running" in st:
            running += 1
        elif "terminated" in st:
            stopped += 1
            if st["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in st:
            last = (s.get("lastState") or {}).get("terminated")
            if last is not None:
                stopped += 1
            else:
                waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _cond(old: Obj, type_: str, status: str, reason: str = "", message: str = "") -> Obj:
    prev = next((c for c in old.get("conditions") or () if c.get("type") == type_), None)
    ltt = prev.get("lastTransitionTime") if prev and prev.get("status") == status else rfc3339()
    out: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": ltt}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def pod_status(
    pod: Obj,
    inits: list[ContainerRecord],
    apps: list[ContainerRecord],
    *,
    sandbox_ready: bool,
    pod_ips: list[str],
    host_ip: str,
    terminal: str = "",
    reason: str = "",
    message: str = "",
) -> Obj:
    """The full ``status`` to post; ``terminal`` forces ``Succeeded``/``Failed``."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    images = {c.get("name"): c.get("image", "") for c in spec.get("containers") or ()}
    images.update({c.get("name"): c.get("image", "") for c in spec.get("initContainers") or ()})
    init_st = [container_status(r, images.get(r.name, "")) for r in inits]
    app_st = [container_status(r, images.get(r.name, "")) for r in apps]
    phase = terminal or pod_phase(pod, init_st, app_st)
    if phase in ("Succeeded", "Failed"):
        for s in app_st:  # a terminal pod's containers are not ready
            s["ready"] = False
    initialized = all("terminated" in (s.get("state") or {}) and s["state"]["terminated"].get("exitCode") == 0
                      for s in init_st)
    not_init = [s["name"] for s in init_st if not ("terminated" in s["state"] and s["state"]["terminated"].get("exitCode") == 0)]
    unready = [s["name"] for s in app_st if not s.get("ready")]
    conds: list[Obj] = []
    conds.append(_cond(old, "PodReadyToStartContainers", "True" if sandbox_ready else "False"))
    if initialized:
        conds.append(_cond(old, "Initialized", "True"))
    else:
        conds.append(_cond(old, "Initialized", "False", "ContainersNotInitialized",
                           f"containers with incomplete status: [{' '.join(not_init)}]"))
    if phase in ("Succeeded", "Failed"):
        why = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        conds.append(_cond(old, "Ready", "False", why, ""))
        conds.append(_cond(old, "ContainersReady", "False", why, ""))
    elif unready or not initialized:
        msg = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
        why = "ContainersNotReady" if initialized else "ContainersNotInitialized"
        if not initialized and not unready:
            msg = f"containers with incomplete status: [{' '.join(not_init)}]"
        conds.append(_cond(old, "Ready", "False", why, msg))
        conds.append(_cond(old, "ContainersReady", "False", why, msg))
    else:
        conds.append(_cond(old, "Ready", "True"))
        conds.append(_cond(old, "ContainersReady", "True"))
    for c in old.get("conditions") or ():
        if c.get("type") not in {x["type"] for x in conds}:
            conds.append(copy.deepcopy(c))  # PodScheduled and anything others own
    out: Obj = {
        "phase": phase,
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}] if host_ip else [],
        "qosClass": old.get("qosClass") or pod_qos_class(spec),
        "startTime": old.get("startTime") or rfc3339(),
        "containerStatuses": app_st,
    }
    if pod_ips:
        out["podIP"] = pod_ips[0]
        out["podIPs"] = [{"ip": ip} for ip in pod_ips]
    elif old.get("podIP"):
        out["podIP"] = old["podIP"]
        out["podIPs"] = old.get("podIPs") or [{"ip": old["podIP"]}]
    if init_st:
        out["initContainerStatuses"] = init_st
    if reason:
        out["reason"] = reason
        out["message"] = message
    return out


def same_status(old: Obj, new: Obj) -> bool:
    """True when posting ``new`` would change nothing the kubelet owns."""
    for k, v in new.items():
        if old.get(k) != v:
            return False
    return True
