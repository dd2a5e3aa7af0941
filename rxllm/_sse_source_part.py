

def _event_loop(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop:
    if isinstance(scheduler, AsyncIOScheduler):
        # reactivex keeps the scheduler's loop in ``_loop`` and offers no public
        # accessor; it is the loop the user asked events to run on.
        loop: asyncio.AbstractEventLoop = scheduler._loop  # noqa: SLF001
        return loop
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise EventLoopError(
            "an rxllm stream needs a running asyncio event loop: subscribe from inside a coroutine, "
            "pass scheduler=AsyncIOScheduler(loop) to subscribe(), or use rxllm.run(observable) "
            "in a plain script"
        ) from None


def _on_loop(loop: asyncio.AbstractEventLoop, action: Callable[[], None]) -> None:
    """Run ``action`` now when on ``loop``'s thread, else soon on that loop (calls keep their order)."""
    try:
        here = asyncio.get_running_loop() is loop
    except RuntimeError:
        here = False
    if here:
        action()
    else:
        loop.call_soon_threadsafe(action)


def sse_source(
    client: HttpClient,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    pause: PauseControl | None = None,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
) -> Observable[SseEvent]:
    """A cold Observable: each subscription POSTs ``body`` once and emits the reply's events.

    .. marble::
        :alt: sse_source

        subscribe ──► POST ──► -e-e-e-|      (the body ended)
                              -e-e-#         (HTTP error, transport error, bad bytes)

    * Exactly one request per subscription; it never reconnects or re-sends.
    * A non-2xx reply is a ``ProviderError`` with the provider's own message.
    * Disposing cancels the request task, which closes the HTTP response.
    * With ``pause``, the body is not read while paused (TCP flow control holds
      the server back); the events of a piece already read are still emitted,
      and ``pause_gate`` holds them.
    * Events are emitted on the event loop: from the running loop of the
      subscribing coroutine, or the loop of an ``AsyncIOScheduler`` passed to
      ``subscribe``. Anywhere else the subscription fails with ``EventLoopError``.
    """

    def subscribe(
        observer: abc.ObserverBase[SseEvent],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        try:
            loop = _event_loop(scheduler)
        except EventLoopError as exc:
            observer.on_error(exc)
            return Disposable()
        disposed = False

        async def pump() -> None:
            decoder = SseDecoder(max_event_size=max_event_size)
            try:
                async with client.open_stream(url, body=body, headers=headers) as pieces:
                    async for piece in pieces:
                        for event in decoder.feed(piece):
                            observer.on_next(event)
                            if disposed:
                                return
                        if pause is not None and pause.is_paused:
                            await pause.wait_resumed()
                    for event in decoder.finish():
                        observer.on_next(event)
                        if disposed:
                            return
            except asyncio.CancelledError:
                return  # disposed: leaving ``async with`` closed the response
            except Exception as exc:  # noqa: BLE001 - every failure reaches the observer
                if not disposed:
                    observer.on_error(exc)
                return
            if not disposed:
                observer.on_completed()

        tasks: list[asyncio.Task[None]] = []

        def start() -> None:
            if not disposed:
                tasks.append(loop.create_task(pump()))

        def stop() -> None:
            for task in tasks:
                # Disposed from inside our own on_next (``[DONE]`` completing the
                # pipe): the pump sees ``disposed`` and returns by itself.
                if task is not asyncio.current_task(loop):
                    task.cancel()

        def cancel() -> None:
            nonlocal disposed
            disposed = True
            _on_loop(loop, stop)

        _on_loop(loop, start)
        return Disposable(cancel)

    return Observable(subscribe)
