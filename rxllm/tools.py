"""Tools the model may call: ``@tool`` turns a typed function into a ``Tool``.

::

    @rxllm.tool(timeout=10)
    async def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''The current weather in a city.

        Args:
            city: The city's name, e.g. "Paris".
            unit: Temperature unit.
        '''

    weather.name          # 'weather'
    weather.description   # 'The current weather in a city.'
    weather.parameters    # JSON schema of an object with `city` (required) and `unit`
    await weather.invoke({"city": "Paris"})   # validated, converted, called -> result text

The parameter types become a msgspec Struct (``msgspec.defstruct``), which
gives both the JSON schema sent to the model and the validation of what the
model sends back: the schema describes exactly what ``invoke`` accepts.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any, Generic, ParamSpec, TypeVar, overload

import msgspec

from rxllm.errors import RxLLMError

__all__ = ["TOOL_THREADS", "Tool", "ToolArgumentsError", "tool", "tool_executor"]

TOOL_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""Worker threads of the pool sync tools run on (the size of asyncio's default executor)."""

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def tool_executor() -> ThreadPoolExecutor:
    """The thread pool every sync tool runs on, made on first use; ``TOOL_THREADS`` workers at most.

    When every worker is held by a tool that hangs, further sync tools wait for
    a free worker, and their own ``timeout`` still bounds the wait.
    """
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=TOOL_THREADS, thread_name_prefix="rxllm-tool")
        return _executor


P = ParamSpec("P")
R = TypeVar("R")

_ARGS_SECTIONS = frozenset({"args", "arguments", "keyword args", "keyword arguments"})
"""Google-style docstring sections that describe parameters."""

_SECTIONS = _ARGS_SECTIONS | frozenset(
    {
        "attributes",
        "example",
        "examples",
        "note",
        "notes",
        "raises",
        "references",
        "return",
        "returns",
        "see also",
        "todo",
        "warning",
        "warnings",
        "yield",
        "yields",
    }
)
"""Section headers that end a docstring's summary."""

_ARG_ENTRY = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?:\((?P<type>.*?)\)\s*)?:(?P<text>.*)$")
"""One parameter in an ``Args:`` section: ``name: text`` or ``name (type): text``."""


class ToolArgumentsError(RxLLMError):
    """The model's arguments do not fit the tool's parameters.

    The message names the tool and says what is wrong, in words the model can
    act on when it is sent back as the tool's result; ``tool_name`` and
    ``reason`` hold the two parts.
    """

    def __init__(self, tool_name: str, reason: str) -> None:
        self.tool_name = tool_name
        self.reason = reason
        super().__init__(f"invalid arguments for tool {tool_name!r}: {reason}")


class Tool(Generic[P, R]):
    """A function the model may call, with the name, description and JSON schema a request sends.

    Usually made with ``@tool``. Calling the ``Tool`` calls the function
    unchanged; ``invoke`` is the model's way in: it validates the arguments,
    runs the function (async functions awaited, sync ones in a worker thread)
    and turns the return value into the result text.
    """

    __slots__ = (
        "_arguments_type",
        "_description",
        "_func",
        "_is_async",
        "_name",
        "_needs_approval",
        "_parameters",
        "_signature",
        "_timeout",
    )

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        needs_approval: bool | Callable[[dict[str, Any]], bool] = False,
    ) -> None:
        if not callable(func):
            raise TypeError(f"@tool needs a function, got {func!r}")
        func_name = getattr(func, "__name__", None)
        if name is None and not isinstance(func_name, str):
            raise TypeError(f"@tool cannot name {func!r}: pass name=...")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"tool timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(needs_approval, bool) and not callable(needs_approval):
            raise TypeError(
                f"needs_approval is True, False or a function of the arguments, not {needs_approval!r}"
            )
        self._needs_approval = needs_approval
        self._func = func
        self._name: str = name if name is not None else str(func_name)
        summary, arg_docs = _parse_docstring(inspect.getdoc(func))
        self._description = description if description is not None else summary
        self._timeout = timeout
        self._is_async = inspect.iscoroutinefunction(func)
        self._arguments_type, self._parameters = _arguments_type(func, self._name, arg_docs)
        self._signature = inspect.signature(func)

    @property
    def name(self) -> str:
        """The name the model calls the tool by."""
        return self._name

    @property
    def description(self) -> str:
        """What the tool does, for the model."""
        return self._description

    @property
    def parameters(self) -> Mapping[str, Any]:
        """JSON schema of the arguments: an object with one property per parameter."""
        return self._parameters

    @property
    def timeout(self) -> float | None:
        """Seconds ``invoke`` allows the function; ``None`` for no limit."""
        return self._timeout

    @property
    def func(self) -> Callable[P, R]:
        """The wrapped function."""
        return self._func

    def needs_approval(self, arguments: object) -> bool:
        """Whether a call with these arguments waits for a person's answer before it runs.

        ``@tool(needs_approval=True)`` asks for every call; a function given as
        ``needs_approval`` decides per call: it gets the arguments the tool
        would be called with (validated and converted, as ``validate`` returns
        them, with the function's defaults filled in) and returns a bool::

            @tool(needs_approval=lambda args: args["amount"] > 100)
            def pay(to: str, amount: int) -> str: ...

        Raises ``ToolArgumentsError`` when a function decides and the
        arguments do not fit (such a call cannot run anyway); what the
        function raises propagates.
        """
        decide = self._needs_approval
        if isinstance(decide, bool):
            return decide
        bound = self._signature.bind_partial(**self.validate(arguments))
        bound.apply_defaults()
        return bool(decide(dict(bound.arguments)))

    def validate(self, arguments: object) -> dict[str, Any]:
        """The keyword arguments ``invoke`` would call the function with (those the model gave).

        ``arguments`` as ``invoke`` takes them: a JSON object as a dict, or its
        text. Raises ``ToolArgumentsError`` when they do not fit the parameters.
        """
        return self._convert(arguments)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool(name={self._name!r})"

    async def invoke(self, arguments: object) -> str:
        """Validate the model's arguments, call the function and return its result as text.

        ``arguments`` is the JSON object the model sent, parsed into a dict, or
        the raw text when it did not parse. An empty text counts as no
        arguments: some servers send ``""`` for a tool without parameters.
        Nested Structs, Enums and Literals arrive as real Python values;
        parameters the model left out take the function's own defaults.

        Raises ``ToolArgumentsError`` when the arguments do not fit the
        parameters, and ``TimeoutError`` when the tool has a ``timeout`` and
        the call outlives it (a sync function's thread cannot be stopped: it
        runs on, its result dropped). Sync functions run on rxllm's own
        bounded thread pool (``tool_executor()``), so a hung one never starves
        the loop's default executor, where aiohttp resolves host names.
        Whatever the function raises propagates unchanged.

        A ``str`` result is returned as is; anything else is encoded as JSON,
        with ``str(value)`` for values JSON has no form for.
        """
        kwargs = self._convert(arguments)
        call: Callable[..., Any] = self._func
        async with asyncio.timeout(self._timeout):
            if self._is_async:
                result: object = await call(**kwargs)
            else:
                # On rxllm's own bounded pool, never the loop's default executor: a sync tool
                # that outlives its timeout keeps its thread, and must not take one that
                # aiohttp needs to resolve host names. The caller's context goes along.
                context = contextvars.copy_context()
                result = await asyncio.get_running_loop().run_in_executor(
                    tool_executor(), partial(context.run, call, **kwargs)
                )
        if isinstance(result, str):
            return result
        return msgspec.json.encode(result, enc_hook=str).decode()

    def _convert(self, arguments: object) -> dict[str, Any]:
        """The keyword arguments for the function; the parameters the model left out are absent."""
        try:
            if isinstance(arguments, str):
                if not arguments.strip():
                    arguments = {}
                else:
                    return _present(msgspec.json.decode(arguments, type=self._arguments_type))
            return _present(msgspec.convert(arguments, self._arguments_type))
        except msgspec.ValidationError as error:
            raise ToolArgumentsError(self._name, str(error)) from error
        except msgspec.DecodeError as error:
            raise ToolArgumentsError(self._name, f"the arguments are not valid JSON ({error})") from error


@overload
def tool(func: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    needs_approval: bool | Callable[[dict[str, Any]], bool] = False,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    needs_approval: bool | Callable[[dict[str, Any]], bool] = False,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make a ``Tool`` of a sync or async function; use as ``@tool`` or ``@tool(...)``.

    The name defaults to the function's, the description to the docstring's
    summary (the text before its ``Args:`` section), and each parameter's
    description comes from its Google-style ``Args:`` entry. Every parameter
    needs a type annotation; parameters with defaults are optional. ``timeout``
    (seconds) bounds each ``invoke``. ``needs_approval`` (``True``, or a function
    of the call's arguments returning a bool) makes an agent ask a person before
    the call runs (see ``Tool.needs_approval`` and ``rxllm.Approvals``).

    Raises ``TypeError`` for a parameter without an annotation, ``*args`` or
    ``**kwargs``, a positional-only parameter, or a type JSON schema cannot
    describe.
    """

    def decorate(f: Callable[P, R]) -> Tool[P, R]:
        return Tool(f, name=name, description=description, timeout=timeout, needs_approval=needs_approval)

    if func is not None:
        return decorate(func)
    return decorate


def _present(arguments: msgspec.Struct) -> dict[str, Any]:
    """The fields of a converted arguments Struct that the model gave."""
    return {
        field: value
        for field in arguments.__struct_fields__
        if (value := getattr(arguments, field)) is not msgspec.UNSET
    }


def _arguments_type(
    func: Callable[..., object], tool_name: str, arg_docs: Mapping[str, str]
) -> tuple[type[msgspec.Struct], dict[str, Any]]:
    """The Struct the model's arguments convert to, and the JSON schema of the parameters.

    A parameter with a default is an optional field defaulting to ``UNSET``,
    so that ``invoke`` leaves it out and the function applies its own default;
    the schema shows the function's default when JSON can hold it.
    """
    try:
        signature = inspect.signature(func, eval_str=True)
    except NameError as error:
        raise TypeError(f"tool {tool_name!r}: cannot resolve the parameter annotations: {error}") from error
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    defaults: dict[str, object] = {}
    for param in signature.parameters.values():
        where = f"parameter {param.name!r} of tool {tool_name!r}"
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"{where}: *{param.name} is not supported; the model passes named arguments")
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            raise TypeError(f"{where}: **{param.name} is not supported; declare each parameter")
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"{where}: positional-only parameters are not supported")
        if param.annotation is inspect.Parameter.empty:
            raise TypeError(f"{where} has no type annotation; every parameter needs one")
        annotation: Any = param.annotation
        if param.default is not inspect.Parameter.empty:
            annotation = annotation | msgspec.UnsetType
            defaults[param.name] = param.default
        if param.name in arg_docs:
            annotation = Annotated[annotation, msgspec.Meta(description=arg_docs[param.name])]
        if param.name in defaults:
            fields.append((param.name, annotation, msgspec.UNSET))
        else:
            fields.append((param.name, annotation))
    arguments_type = msgspec.defstruct(
        f"{tool_name}_arguments",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        module=getattr(func, "__module__", None),
    )
    try:
        (ref,), components = msgspec.json.schema_components([arguments_type], ref_template="#/$defs/{name}")
    except TypeError as error:
        raise TypeError(_unsupported_type(signature, tool_name, error)) from error
    own = components.pop(ref["$ref"].removeprefix("#/$defs/"))
    properties: dict[str, Any] = own["properties"]
    for field, default in defaults.items():
        try:
            properties[field]["default"] = msgspec.json.decode(msgspec.json.encode(default))
        except (TypeError, ValueError):
            pass  # the default has no JSON form: the schema just marks the parameter optional
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": own.get("required", []),
        "additionalProperties": False,
    }
    if components:
        parameters["$defs"] = components
    return arguments_type, parameters


def _unsupported_type(signature: inspect.Signature, tool_name: str, error: TypeError) -> str:
    """Name the parameter whose type JSON schema cannot describe."""
    for param in signature.parameters.values():
        try:
            msgspec.json.schema(param.annotation)
        except TypeError:
            where = f"parameter {param.name!r} of tool {tool_name!r}"
            return f"{where}: type {param.annotation!r} has no JSON schema"
    return f"tool {tool_name!r}: the parameter types have no JSON schema ({error})"


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and its ``Args:`` descriptions.

    The summary is the text before the first section header (``Args:``,
    ``Returns:``...). In an ``Args:`` section each entry is ``name: text`` or
    ``name (type): text``; lines indented further than the entry continue it.
    """
    summary: list[str] = []
    described: dict[str, str] = {}
    section: str | None = None
    entry_indent: int | None = None
    current: str | None = None
    for line in (doc or "").splitlines():
        text = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent == 0 and text.endswith(":") and text[:-1].lower() in _SECTIONS:
            section, entry_indent, current = text[:-1].lower(), None, None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in _ARGS_SECTIONS or not text:
            continue
        if indent == 0:  # text outside any section: the Args section is over
            section, current = "", None
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent <= entry_indent:
            match = _ARG_ENTRY.match(text)
            current = match["name"] if match else None
            if match:
                described[match["name"]] = match["text"].strip()
        elif current is not None:
            described[current] = f"{described[current]} {text}".strip()
    return "\n".join(summary).strip(), described
