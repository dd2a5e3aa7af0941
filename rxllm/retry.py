"""``rxllm.retry``: the public name of ``rxllm.transport.retry``, where it lives since layout v2.

The objects are the same; this module names them so that imports written for it
keep working.
"""

from __future__ import annotations

from rxllm.transport.retry import (
    NEVER_RETRY_STATUSES,
    RETRY_ERROR_TYPES,
    RETRY_STATUSES,
    Backoff,
    Retry,
    RetryPolicy,
    retry_before_first_event,
    retry_turn,
)

__all__ = [
    "NEVER_RETRY_STATUSES",
    "RETRY_ERROR_TYPES",
    "RETRY_STATUSES",
    "Backoff",
    "Retry",
    "RetryPolicy",
    "retry_before_first_event",
    "retry_turn",
]
