"""``parse_output(T)``: a JSON answer as ``PartialOutput`` while it grows, then a validated ``Output``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from rxllm.events import AgentEvent, Final, Output, PartialOutput, StreamReset, TextDelta
from rxllm.output import output_spec
from rxllm.partial_json import PartialJsonError, PartialJsonParser

__all__ = ["parse_output", "partial_outputs"]

OutputOperator = Callable[[Observable[AgentEvent]], Observable[AgentEvent]]


class OutputText:
    """One turn's answer text: kept in pieces (joined once) and parsed as it grows.

    ``feed`` returns the ``PartialOutput`` a piece brings, if it changed the
    value. A text that stops parsing as JSON stops the partial values; the
    whole text's validation (``OutputSpec.validate``) then reports it, with
    msgspec's message and the whole raw text.
    """

    __slots__ = ("_parser", "pieces")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self._parser: PartialJsonParser | None = PartialJsonParser()

    def feed(self, text: str) -> PartialOutput | None:
        self.pieces.append(text)
        parser = self._parser
        if parser is None:
            return None
        try:
            value = parser.feed(text)
        except PartialJsonError:
            self._parser = None  # malformed: no more partial values; the validation says why
            return None
        return None if value is None else PartialOutput(value=value)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def parse_output(output_type: Any) -> OutputOperator:
    """``PartialOutput`` events as a turn's JSON answer grows, then one validated ``Output`` after ``Final``.

    .. marble::
        :alt: parse_output

        -a-----b-----c-----f-----|      a, b, c: the JSON answer in pieces; f: the turn's Final
        [ parse_output(Person) ]
        -(a,p)-(b,q)-(c,r)-(f,o)-|      p, q, r: the value so far after each; o: the validated Person

        :values: class Person(msgspec.Struct): name: str; age: int
                 a, b = TextDelta(text='{"name": "A'), TextDelta(text='da", "age":')
                 c = TextDelta(text=' 36}')
                 f = Final(finish_reason="stop")
                 p, q = PartialOutput(value={"name": "A"}), PartialOutput(value={"name": "Ada"})
                 r = PartialOutput(value={"name": "Ada", "age": 36})
                 o = Output(value=Person(name="Ada", age=36))

    Every event passes through unchanged, the ``TextDelta`` pieces of the JSON
    too (a UI may show the raw text; ``collect_response`` and the agent's
    history need it). After a piece that changed the value so far, a
    ``PartialOutput`` follows it: plain JSON data, not validated (see
    ``rxllm.partial_json`` for what it holds). After the turn's ``Final`` comes
    one ``Output`` with the whole text decoded and converted to
    ``output_type`` by msgspec, or the error ``OutputValidationError`` with the
    raw text and msgspec's message (the path of what failed). A source that
    completes without a ``Final`` after text gets its ``Output`` (or error)
    just before completing.

    A ``StreamReset`` (a provider resent the turn) discards the text so far:
    the new attempt's answer is parsed from its start. An upstream error (a
    stream cut halfway through the JSON) passes on as it is, with no
    ``Output``. After a ``Final`` the next text starts a new answer, so a
    stream of several structured turns gives an ``Output`` per turn.
    ``output_type``'s schema and decoder are made once (``rxllm.output``).
    """
    spec = output_spec(output_type)

    def _parse_output(source: Observable[AgentEvent]) -> Observable[AgentEvent]:
        def subscribe(
            observer: abc.ObserverBase[AgentEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            answer: OutputText | None = None  # the current turn's, from its first piece of text
            ended = False

            def finish() -> bool:
                """Emit the answer's ``Output``; ``False`` after delivering the error instead."""
                nonlocal answer
                text = answer.text if answer is not None else ""
                answer = None
                try:
                    value = spec.validate(text)
                except Exception as error:  # noqa: BLE001 - OutputValidationError, to the observer
                    fail(error)
                    return False
                observer.on_next(Output(value=value))
                return True

            def fail(error: Exception) -> None:
                nonlocal ended
                ended = True
                subscription.dispose()
                observer.on_error(error)

            def on_next(event: AgentEvent) -> None:
                nonlocal answer
                if ended:
                    return
                observer.on_next(event)
                if isinstance(event, TextDelta):
                    if answer is None:
                        answer = OutputText()
                    partial = answer.feed(event.text)
                    if partial is not None:
                        observer.on_next(partial)
                elif isinstance(event, Final):
                    finish()
                elif type(event) is StreamReset:
                    answer = None

            def on_error(error: Exception) -> None:
                if not ended:
                    observer.on_error(error)

            def on_completed() -> None:
                if ended:
                    return
                if answer is not None and not finish():
                    return
                observer.on_completed()

            subscription = SingleAssignmentDisposable()
            subscription.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            return subscription

        return Observable(subscribe)

    return _parse_output


def partial_outputs() -> OutputOperator:
    """The agent's half of ``parse_output``: ``PartialOutput`` after each piece that changed the value.

    The agent validates the answer itself at the end of the turn that called
    no tool (and, when it does not validate, asks the model again); a turn that
    calls tools may carry text that is no JSON at all, which only stops its
    partial values. A ``StreamReset`` or a ``Final`` starts a new answer.
    """

    def _partial_outputs(source: Observable[AgentEvent]) -> Observable[AgentEvent]:
        def subscribe(
            observer: abc.ObserverBase[AgentEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            answer = OutputText()

            def on_next(event: AgentEvent) -> None:
                nonlocal answer
                observer.on_next(event)
                if isinstance(event, TextDelta):
                    partial = answer.feed(event.text)
                    if partial is not None:
                        observer.on_next(partial)
                elif isinstance(event, Final) or type(event) is StreamReset:
                    answer = OutputText()

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _partial_outputs
