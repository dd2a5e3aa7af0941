import asyncio
import enum
import threading
from typing import Literal

import msgspec
import pytest

from rxllm.errors import RxLLMError
from rxllm.tools import Tool, ToolArgumentsError, tool
from rxllm.typing import ToolSpec


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


class Point(msgspec.Struct, frozen=True, kw_only=True):
    x: int
    y: int = 0


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b (int): The second number,
            which may be negative.

    Returns:
        The sum.
    """
    return a + b


# --- schema -----------------------------------------------------------------------------------------------


def test_name_description_and_parameters_from_the_function() -> None:
    assert isinstance(add, Tool)
    assert add.name == "add"
    assert add.description == "Add two integers."
    assert add.parameters == {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "description": "The first number."},
            "b": {"type": "integer", "description": "The second number, which may be negative."},
        },
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    assert add.timeout is None


def test_a_tool_is_a_tool_spec() -> None:
    spec: ToolSpec = add
    assert (spec.name, spec.description, spec.parameters) == (add.name, add.description, add.parameters)


def test_calling_the_tool_calls_the_function() -> None:
    assert add(2, 3) == 5
    assert add.func(2, b=3) == 5


def test_repr_is_short() -> None:
    assert repr(add) == "Tool(name='add')"


def test_strings_and_a_multi_paragraph_summary() -> None:
    @tool
    def greet(name: str, punctuation: str) -> str:
        """Greet someone.

        The greeting is short.

        Args:
            name: Who to greet.
            punctuation: What ends the greeting.
        """
        return f"Hello, {name}{punctuation}"

    assert greet.description == "Greet someone.\n\nThe greeting is short."
    assert greet.parameters == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Who to greet."},
            "punctuation": {"type": "string", "description": "What ends the greeting."},
        },
        "required": ["name", "punctuation"],
        "additionalProperties": False,
    }


def test_summary_stops_at_any_section_and_args_may_follow_it() -> None:
    @tool
    def ping(host: str) -> str:
        """Ping a host.

        Returns:
            The round trip, as text.

        Arguments:
            host: Name or address.
        """
        return host

    assert ping.description == "Ping a host."
    assert ping.parameters["properties"] == {"host": {"type": "string", "description": "Name or address."}}


def test_no_docstring_means_no_descriptions() -> None:
    @tool
    def bare(flag: bool) -> bool:
        return flag

    assert bare.description == ""
    assert bare.parameters == {
        "type": "object",
        "properties": {"flag": {"type": "boolean"}},
        "required": ["flag"],
        "additionalProperties": False,
    }


def test_no_parameters_gives_an_empty_object() -> None:
    @tool
    def now() -> str:
        """The time."""
        return "noon"

    assert now.parameters == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


_NO_JSON = object()


def test_defaults_make_parameters_optional_with_their_default() -> None:
    @tool
    def search(
        query: str,
        limit: int = 10,
        tags: tuple[str, ...] = ("news",),
        unit: Unit = Unit.CELSIUS,
        seed: int = _NO_JSON,  # type: ignore[assignment]
        *,
        exact: bool = False,
    ) -> str:
        """Search.

        Args:
            query: Words to look for.
            limit: At most this many hits.
        """
        return query

    assert search.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Words to look for."},
            "limit": {"type": "integer", "description": "At most this many hits.", "default": 10},
            "tags": {"type": "array", "items": {"type": "string"}, "default": ["news"]},
            "unit": {"$ref": "#/$defs/Unit", "default": "C"},
            "seed": {"type": "integer"},
            "exact": {"type": "boolean", "default": False},
        },
        "required": ["query"],
        "additionalProperties": False,
        "$defs": {"Unit": {"title": "Unit", "enum": ["C", "F"]}},
    }


def test_containers_optionals_and_literals() -> None:
    @tool
    def stats(
        values: list[int],
        weights: dict[str, float],
        scale: int | None,
        mode: Literal["mean", "median"],
        note: str | None = None,
    ) -> str:
        """Statistics."""
        return ""

    assert stats.parameters == {
        "type": "object",
        "properties": {
            "values": {"type": "array", "items": {"type": "integer"}},
            "weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "scale": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "mode": {"enum": ["mean", "median"]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["values", "weights", "scale", "mode"],
        "additionalProperties": False,
    }


def test_enums_and_nested_structs_go_to_defs() -> None:
    @tool
    def move(to: Point, unit: Unit) -> str:
        """Move.

        Args:
            to: Where to.
            unit: Unit of the report.
        """
        return ""

    assert move.parameters == {
        "type": "object",
        "properties": {
            "to": {"$ref": "#/$defs/Point", "description": "Where to."},
            "unit": {"$ref": "#/$defs/Unit", "description": "Unit of the report."},
        },
        "required": ["to", "unit"],
        "additionalProperties": False,
        "$defs": {
            "Point": {
                "title": "Point",
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}},
                "required": ["x"],
            },
            "Unit": {"title": "Unit", "enum": ["C", "F"]},
        },
    }


def test_name_description_and_timeout_overrides() -> None:
    @tool(name="sum", description="Adds numbers.", timeout=2.5)
    def add_numbers(a: int) -> int:
        """Not this."""
        return a

    assert (add_numbers.name, add_numbers.description, add_numbers.timeout) == ("sum", "Adds numbers.", 2.5)
    assert repr(add_numbers) == "Tool(name='sum')"


def test_bare_call_form_with_no_options() -> None:
    @tool()
    def double(n: int) -> int:
        """Double."""
        return 2 * n

    assert (double.name, double(4)) == ("double", 8)


def test_string_annotations_are_resolved() -> None:
    def later(n: "int", unit: "Unit") -> str:
        return ""

    assert tool(later).parameters["properties"] == {
        "n": {"type": "integer"},
        "unit": {"$ref": "#/$defs/Unit"},
    }


# --- decoration errors ------------------------------------------------------------------------------------


def test_missing_annotation_is_a_type_error() -> None:
    def f(a: int, b) -> int:  # type: ignore[no-untyped-def]
        return a

    with pytest.raises(TypeError) as caught:
        tool(f)
    assert str(caught.value) == "parameter 'b' of tool 'f' has no type annotation; every parameter needs one"


def test_star_args_is_a_type_error() -> None:
    def f(*numbers: int) -> int:
        return 0

    with pytest.raises(TypeError) as caught:
        tool(f)
    assert str(caught.value) == (
        "parameter 'numbers' of tool 'f': *numbers is not supported; the model passes named arguments"
    )


def test_star_kwargs_is_a_type_error() -> None:
    def f(**options: int) -> int:
        return 0

    with pytest.raises(TypeError) as caught:
        tool(f)
    assert str(caught.value) == (
        "parameter 'options' of tool 'f': **options is not supported; declare each parameter"
    )


def test_positional_only_is_a_type_error() -> None:
    def f(a: int, /) -> int:
        return a

    with pytest.raises(TypeError) as caught:
        tool(f)
    assert str(caught.value) == "parameter 'a' of tool 'f': positional-only parameters are not supported"


def test_a_type_without_json_schema_is_a_type_error_naming_the_parameter() -> None:
    class Opaque:
        pass

    def f(a: int, thing: Opaque) -> int:
        return a

    with pytest.raises(TypeError) as caught:
        tool(f)
    assert str(caught.value) == f"parameter 'thing' of tool 'f': type {Opaque!r} has no JSON schema"


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError) as caught:
        tool(timeout=0)(add.func)
    assert str(caught.value) == "tool timeout must be a positive number of seconds, got 0"


# --- invoke -----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invoke_awaits_an_async_function() -> None:
    @tool
    async def slow_add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    assert await slow_add.invoke({"a": 2, "b": 40}) == "42"


@pytest.mark.asyncio
async def test_invoke_runs_a_sync_function_off_the_loop_thread() -> None:
    threads: list[int] = []

    @tool
    def where(label: str) -> str:
        threads.append(threading.get_ident())
        return label

    assert await where.invoke({"label": "ok"}) == "ok"
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


@pytest.mark.asyncio
async def test_result_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    results: dict[str, object] = {
        "text": "plain, not JSON",
        "dict": {"b": 1, "a": [True, None]},
        "struct": Point(x=1, y=2),
        "list": [1, "two", 3.5],
        "number": 7,
        "none": None,
        "unknown": {"value": Opaque()},
    }

    @tool
    def produce(kind: str) -> object:
        return results[kind]

    assert await produce.invoke({"kind": "text"}) == "plain, not JSON"
    assert await produce.invoke({"kind": "dict"}) == '{"b":1,"a":[true,null]}'
    assert await produce.invoke({"kind": "struct"}) == '{"x":1,"y":2}'
    assert await produce.invoke({"kind": "list"}) == '[1,"two",3.5]'
    assert await produce.invoke({"kind": "number"}) == "7"
    assert await produce.invoke({"kind": "none"}) == "null"
    assert await produce.invoke({"kind": "unknown"}) == '{"value":"opaque!"}'


@pytest.mark.asyncio
async def test_arguments_become_python_values() -> None:
    received: list[tuple[Point, Unit, Literal["a", "b"], list[int] | None]] = []

    @tool
    def take(to: Point, unit: Unit, mode: Literal["a", "b"], extra: list[int] | None) -> str:
        received.append((to, unit, mode, extra))
        return "ok"

    assert await take.invoke({"to": {"x": 3}, "unit": "F", "mode": "b", "extra": None}) == "ok"
    assert received == [(Point(x=3, y=0), Unit.FAHRENHEIT, "b", None)]
    assert type(received[0][0]) is Point
    assert type(received[0][1]) is Unit


@pytest.mark.asyncio
async def test_left_out_parameters_take_the_function_defaults() -> None:
    @tool
    def show(a: int, tags: tuple[str, ...] = ("news",), *, flag: bool = True) -> str:
        return repr((a, tags, flag))

    assert await show.invoke({"a": 1}) == "(1, ('news',), True)"
    assert await show.invoke({"a": 1, "tags": ["x", "y"], "flag": False}) == "(1, ('x', 'y'), False)"


@pytest.mark.asyncio
async def test_a_json_string_is_decoded() -> None:
    assert await add.invoke('{"a": 1, "b": 2}') == "3"


@pytest.mark.asyncio
async def test_an_empty_string_means_no_arguments() -> None:
    @tool
    def now() -> str:
        return "noon"

    assert await now.invoke("") == "noon"
    with pytest.raises(ToolArgumentsError) as caught:
        await add.invoke("")
    assert str(caught.value) == "invalid arguments for tool 'add': Object missing required field `a`"


@pytest.mark.asyncio
async def test_wrong_type_names_the_tool_and_the_path() -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        await add.invoke({"a": "1", "b": 2})
    assert isinstance(caught.value, RxLLMError)
    assert str(caught.value) == "invalid arguments for tool 'add': Expected `int`, got `str` - at `$.a`"
    assert (caught.value.tool_name, caught.value.reason) == ("add", "Expected `int`, got `str` - at `$.a`")


@pytest.mark.asyncio
async def test_wrong_type_inside_a_nested_struct() -> None:
    @tool
    def move(to: Point) -> str:
        return ""

    with pytest.raises(ToolArgumentsError) as caught:
        await move.invoke('{"to": {"x": 1, "y": "2"}}')
    assert str(caught.value) == "invalid arguments for tool 'move': Expected `int`, got `str` - at `$.to.y`"


@pytest.mark.asyncio
async def test_an_unknown_enum_value_is_rejected() -> None:
    @tool
    def pick(unit: Unit) -> str:
        return ""

    with pytest.raises(ToolArgumentsError) as caught:
        await pick.invoke({"unit": "K"})
    assert str(caught.value) == "invalid arguments for tool 'pick': Invalid enum value 'K' - at `$.unit`"


@pytest.mark.asyncio
async def test_an_extra_key_is_rejected() -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        await add.invoke({"a": 1, "b": 2, "c": 3})
    assert str(caught.value) == "invalid arguments for tool 'add': Object contains unknown field `c`"


@pytest.mark.asyncio
async def test_arguments_that_are_not_an_object_are_rejected() -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        await add.invoke([1, 2])
    assert str(caught.value) == "invalid arguments for tool 'add': Expected `object`, got `array`"


@pytest.mark.asyncio
async def test_a_string_that_is_not_json_is_rejected() -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        await add.invoke('{"a": 1, "b": ')
    assert str(caught.value) == (
        "invalid arguments for tool 'add': the arguments are not valid JSON (Input data was truncated)"
    )
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)


@pytest.mark.asyncio
async def test_invalid_arguments_do_not_call_the_function() -> None:
    calls: list[int] = []

    @tool
    async def count(n: int) -> str:
        calls.append(n)
        return ""

    with pytest.raises(ToolArgumentsError):
        await count.invoke({"n": 1.5})
    assert calls == []


@pytest.mark.asyncio
async def test_timeout_raises_timeout_error() -> None:
    @tool(timeout=0.05)
    async def hang() -> str:
        await asyncio.sleep(10)
        return "never"

    with pytest.raises(TimeoutError):
        await hang.invoke({})


@pytest.mark.asyncio
async def test_within_the_timeout_the_result_arrives() -> None:
    @tool(timeout=5)
    async def quick() -> str:
        await asyncio.sleep(0)
        return "done"

    assert await quick.invoke({}) == "done"


def test_exceptions_from_the_function_propagate_unchanged() -> None:
    boom = LookupError("no such city")

    @tool
    async def fail_async(city: str) -> str:
        raise boom

    @tool
    def fail_sync(city: str) -> str:
        raise boom

    for failing in (fail_async, fail_sync):
        with pytest.raises(LookupError) as caught:
            asyncio.run(failing.invoke({"city": "Atlantis"}))
        assert caught.value is boom


def test_public_names() -> None:
    import rxllm.tools

    assert rxllm.tools.__all__ == ["TOOL_THREADS", "Tool", "ToolArgumentsError", "tool", "tool_executor"]
    assert str(ToolArgumentsError("t", "why")) == "invalid arguments for tool 't': why"
