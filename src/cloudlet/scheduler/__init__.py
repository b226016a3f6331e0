"""The scheduler: queue, filter and score plugins, preemption, binding.

Public surface: :class:`Scheduler` (run it with ``await scheduler.run()``),
:func:`build_profile` / :func:`load_profile` (plugin selection) and the
plugin Protocols in :mod:`cloudlet.scheduler.framework`.
"""

from __future__ import annotations

from cloudlet.scheduler.config import Profile, build_profile, load_profile
from cloudlet.scheduler.scheduler import SCHEDULER_NAME, Scheduler

__all__ = ["SCHEDULER_NAME", "Profile", "Scheduler", "build_profile", "load_profile"]
