"""The log layer of a provider's turn: its start, its end (with usage), its failure, as DEBUG records.

``Provider.stream`` adds it only when logging is on (``rxllm.enable_logging``);
otherwise a turn has no layer at all.
"""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxllm import _log
from rxllm.events import AssistantEvent, Final

__all__ = ["logged"]


def logged(model: str, url: str) -> Callable[[Observable[AssistantEvent]], Observable[AssistantEvent]]:
    """Log a turn's start, end (with usage) and failure."""

    def _logged_(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        def subscribe(
            observer: abc.ObserverBase[AssistantEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            _log.log("DEBUG", f"streaming {model} from {url}", operation="chat", model=model)
            final: list[Final] = []

            def on_next(event: AssistantEvent) -> None:
                if isinstance(event, Final):
                    final.append(event)
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                _log.log(
                    "DEBUG",
                    f"{model} stream failed: {type(error).__name__}",
                    operation="chat",
                    model=model,
                    fields={"error.type": type(error).__name__},
                )
                observer.on_error(error)

            def on_completed() -> None:
                end = final[-1] if final else Final()
                usage = end.usage
                _log.log(
                    "DEBUG",
                    f"{model} turn complete ({end.finish_reason})",
                    operation="chat",
                    model=model,
                    input_tokens=usage.input_tokens if usage is not None else None,
                    output_tokens=usage.output_tokens if usage is not None else None,
                    fields={
                        "gen_ai.response.id": end.response_id,
                        "gen_ai.response.model": end.model,
                        "gen_ai.response.finish_reasons": [end.finish_reason] if end.finish_reason else [],
                    },
                )
                observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _logged_
