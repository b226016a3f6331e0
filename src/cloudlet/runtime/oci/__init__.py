"""The OCI container handler: runc 1.1 on cgroup v1 (hybrid), supervised by conmon.

``RuncRuntime(state_dir, instance)`` (``name = "runc"``) implements
:class:`cloudlet.runtime.interface.RuntimeHandler`.

Design
------
* **Sandbox = pause container.** ``run_sandbox`` starts a tiny "pause"
  container (Debian's static busybox running an ash loop, in a read-only
  rootfs under ``<state_dir>/pause-rootfs``) that owns the pod's IPC and UTS
  namespaces (hostname = the pod's hostname) and, with
  ``shareProcessNamespace``, the PID namespace it reaps. It joins the network
  namespace the agent created (``netns_path``). App containers join those
  namespaces through ``/proc/<pause pid>/ns/*`` and get their own mount (and
  usually PID) namespace. ``/dev/shm`` is one tmpfs per pod, mounted on the
  host under the sandbox's directory and bind-mounted into every container.
* **cgroups.** The pod cgroup is ``cgroup_parent`` (always below
  ``cloudlet-<instance>``), created by us in the memory/cpu/cpuacct/pids
  hierarchies with the pod-level limits; each container (and the pause
  container) is a child named after its id, created by runc in every
  hierarchy with the container's limits. Removal walks every hierarchy
  (v1 controllers, ``name=systemd`` and the hybrid cgroup2 mount).
* **Supervision: conmon.** Each container runs under its own ``conmon``
  (CRI-O's monitor): conmon runs ``runc create`` and reports the pid over a
  sync pipe, then double-forks away from the agent, copies the container's
  stdout/stderr into the CRI log file (``k8s-file``), watches
  ``memory.oom_control`` and writes ``exit`` (and ``oom``) files into the
  container directory when the process ends. The agent then calls
  ``runc start``. Containers therefore outlive an agent restart, and a new
  ``RuncRuntime`` learns everything from files: ``sandbox.json``,
  ``meta.json``, the ``exit`` file, conmon's pid file and runc's own state
  (``<state_dir>/runc``).
* **Status.** ``exit`` present -> exited with that code (conmon writes
  128+signal for a killed process). ``OOMKilled`` when the container's own
  memory cgroup counted an ``oom_kill`` (the cgroup lives until
  ``runc delete``), or conmon saw an OOM event and the code is 137.
* **Lost monitor.** If conmon is killed, the process keeps running (status
  ``running`` while its pid lives); once it is gone without an ``exit`` file
  the status is ``exited``, code 255, reason ``Error``, with a message saying
  so.
* **Blocking host work** (conmon waiting for ``runc create``, cgroup removal,
  file I/O) runs on a small thread pool of its own, never on the loop and
  never on the loop's default executor. conmon is started with a plain
  ``subprocess`` in that pool because uvloop (which ``cloudlet up`` installs)
  does not keep ``pass_fds`` descriptor numbers, and conmon finds its sync
  pipe by number.
* **Exec** runs ``runc exec`` as a child of the agent (pipes, or a host pty
  for ``tty``); see :mod:`.exec`. ``exec_sync`` kills the exec'd process on
  timeout.
* **Security.** :mod:`.spec` builds ``config.json``: the CRI default
  capability set with add/drop, privileged (all capabilities, host devices,
  nothing masked, no seccomp), read-only rootfs, no_new_privileges, masked
  and read-only ``/proc`` paths (unless ``procMount: Unmasked``), and seccomp
  RuntimeDefault (:mod:`.seccomp`), Unconfined or Localhost.
* **Stop signal.** ``ContainerSpec.stop_signal`` (the image's StopSignal),
  else a container annotation (or label) ``cloudlet.io/stop-signal`` (e.g.
  ``SIGQUIT``), else ``SIGTERM``.

Host state, all named ``cloudlet-<instance>-...``: runc containers
``cloudlet-<instance>-p<hex>`` (pause) and ``cloudlet-<instance>-c<hex>``,
their conmon processes, cgroups under ``cloudlet-<instance>/``, the shm
tmpfs (source ``cloudlet-<instance>-shm``) and ``<state_dir>/sandboxes/<id>/``.
"""

from __future__ import annotations

from .runtime import STOP_SIGNAL_ANNOTATION, RuncRuntime

__all__ = ["RuncRuntime", "STOP_SIGNAL_ANNOTATION"]
