"""``rxllm.timeouts``: the public name of ``rxllm.transport.timeouts``, where it lives since layout v2.

The objects are the same; this module names them so that imports written for it
keep working.
"""

from __future__ import annotations

from rxllm.transport.timeouts import (
    Clock,
    Pausable,
    ProgressWindow,
    Timeouts,
    Timers,
    TotalWindow,
    Window,
    progress_timeout,
    total_timeout,
)

__all__ = [
    "Clock",
    "Pausable",
    "ProgressWindow",
    "Timeouts",
    "Timers",
    "TotalWindow",
    "Window",
    "progress_timeout",
    "total_timeout",
]
