"""Container lifecycle hooks: ``postStart`` and ``preStop``.

:func:`run_hook` runs one ``LifecycleHandler`` — ``exec`` (through the
runtime's ``exec_sync``), ``httpGet`` (to the pod IP unless ``host`` is set)
or ``sleep`` — and returns None on success or the kubelet's error text. The
agent records ``FailedPostStartHook`` / ``FailedPreStopHook`` events with it;
a failed ``postStart`` kills the container (which then restarts per the
restart policy), as the kubelet does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cloudlet.node.probes import ProbeTarget, http_get

Obj = dict[str, Any]


async def run_hook(handler: Obj, target: ProbeTarget, limit: float) -> str | None:
    """Run one lifecycle handler within ``limit`` seconds; None or an error message."""
    try:
        if handler.get("exec") is not None:
            argv = list((handler["exec"] or {}).get("command") or [])
            if target.exec_sync is None:
                return "exec is not supported by this runtime"
            res = await target.exec_sync(argv, limit)
            if res.exit_code != 0 or res.timed_out:
                out = (res.stdout + res.stderr).decode(errors="replace")
                return f"command '{' '.join(argv)}' exited with {res.exit_code}: {out}"
            return None
        if handler.get("httpGet") is not None:
            ok, msg, _code = await http_get(handler["httpGet"], target, limit)
            return None if ok else msg
        if handler.get("sleep") is not None:
            await asyncio.sleep(min(float((handler["sleep"] or {}).get("seconds") or 0), limit))
            return None
    except asyncio.CancelledError:
        raise
    except Exception as e:
        return str(e)
    return "lifecycle handler has no action"


def describe(handler: Obj) -> str:
    """How the kubelet names a handler in its messages: ``Exec lifecycle hook ([cmd])``."""
    if handler.get("exec") is not None:
        cmd = list((handler["exec"] or {}).get("command") or [])
        return f"Exec lifecycle hook ([{' '.join(cmd)}])"
    if handler.get("httpGet") is not None:
        hg = handler["httpGet"] or {}
        return f"HTTP lifecycle hook ({hg.get('path', '/')})"
    return "Sleep lifecycle hook"
