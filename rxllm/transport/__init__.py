"""The transport floor: bytes from the socket to events, on the event loop, with the time limits and retries.

``_http`` (the HTTP client, one session per loop, the TLS policy), ``sse`` (the
pure event-stream decoder), ``_source`` (the I/O source that feeds a decoder),
``_aio`` (where events are delivered: the loop, tasks), ``timeouts`` and
``retry`` (the limits and the retries, on one timer mechanism), ``_fusion``
(the fused links every rxllm stage is made of). Nothing here knows a provider or
the agent. ``rxllm.sse``, ``rxllm.timeouts`` and ``rxllm.retry`` name the public
modules by their first addresses.
"""
