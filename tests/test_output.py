"""``rxllm.output``: output schemas (strict where they can be), made once per type; answers validated."""

from __future__ import annotations

import dataclasses
import decimal
import enum
import uuid
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from rxllm.errors import OutputValidationError
from rxllm.output import OutputSpec, output_spec


class Address(msgspec.Struct):
    street: str
    city: str


class Contact(msgspec.Struct):
    """A person to reach."""

    name: str
    emails: list[str]
    address: Address | None = None
    vip: bool = False


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Node(msgspec.Struct):
    value: int
    children: list[Node] = []


class Described(msgspec.Struct):
    home: Annotated[Address, msgspec.Meta(description="Where they live")]
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    colour: Colour = Colour.RED
    size: Literal["S", "M", "L"] = "M"
    id: uuid.UUID | None = None


class Partial(TypedDict, total=False):
    a: int
    b: str


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Cat(msgspec.Struct, tag="cat"):
    lives: int


class Dog(msgspec.Struct, tag="dog"):
    good: bool = True


class Pets(msgspec.Struct):
    pets: list[Cat | Dog]


class WithMap(msgspec.Struct):
    counts: dict[str, int]


class WithTuple(msgspec.Struct):
    pair: tuple[int, str]


class WithSet(msgspec.Struct):
    tags: set[str]


class WithLength(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(min_length=3)]


class WithDecimal(msgspec.Struct):
    price: decimal.Decimal


class WithAny(msgspec.Struct):
    extra: dict[str, Any]


STRICT_TYPES = [Contact, Node, Described, Partial, Point, Pets]
NOT_STRICT_TYPES = [
    list[Contact], Cat | Dog, int, WithMap, WithTuple, WithSet, WithLength, WithDecimal, WithAny
]  # fmt: skip


@pytest.mark.parametrize("kind", STRICT_TYPES, ids=lambda kind: kind.__name__)
def test_types_strict_mode_can_express(kind: Any) -> None:
    spec = output_spec(kind)
    assert spec.strict and spec.wire_schema is spec.strict_schema
    _check_strict_rules(spec.strict_schema)


@pytest.mark.parametrize("kind", NOT_STRICT_TYPES, ids=repr)
def test_types_strict_mode_cannot_express_stay_as_msgspec_says(kind: Any) -> None:
    spec = output_spec(kind)
    assert not spec.strict and spec.wire_schema is spec.schema


def _check_strict_rules(node: Any) -> None:
    """Every object closed with all properties required; only keywords strict mode knows."""
    if isinstance(node, list):
        for item in node:
            _check_strict_rules(item)
        return
    if not isinstance(node, dict):
        return
    unsupported = {"default", "minLength", "maxLength", "uniqueItems", "prefixItems", "discriminator"}
    assert not set(node) & unsupported
    if "$ref" in node:
        assert set(node) == {"$ref"}
    if node.get("type") == "object":
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    for key, value in node.items():
        if key == "properties":
            for child in value.values():
                _check_strict_rules(child)
        elif key != "enum":
            _check_strict_rules(value)


def test_the_root_definition_is_inlined_and_the_others_stay_in_defs() -> None:
    spec = output_spec(Contact)
    assert spec.schema["title"] == "Contact" and spec.schema["type"] == "object"
    assert list(spec.schema["$defs"]) == ["Address"]
    assert spec.schema["required"] == ["name", "emails"]  # msgspec's own, untouched
    assert spec.schema["properties"]["vip"] == {"type": "boolean", "default": False}


def test_a_recursive_type_keeps_its_own_definition_for_the_references() -> None:
    spec = output_spec(Node)
    assert spec.strict_schema is not None
    children = spec.strict_schema["properties"]["children"]
    assert children == {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    assert spec.strict_schema["$defs"]["Node"]["required"] == ["value", "children"]


def test_a_reference_with_a_description_is_inlined_keeping_the_description() -> None:
    strict = output_spec(Described).strict_schema
    assert strict is not None
    assert strict["properties"]["home"] == {
        "title": "Address",
        "description": "Where they live",
        "type": "object",
        "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        "required": ["street", "city"],
        "additionalProperties": False,
    }
    assert strict["properties"]["rating"] == {"type": "integer", "minimum": 1, "maximum": 5}


def test_the_schema_is_not_changed_by_adapting_it() -> None:
    before = msgspec.json.schema(Described)
    output_spec(Described)
    assert msgspec.json.schema(Described) == before


def test_made_once_and_shared() -> None:
    assert output_spec(Contact) is output_spec(Contact)
    assert output_spec(list[Contact]) is output_spec(list[Contact])


def test_names_as_the_apis_accept_them() -> None:
    odd = msgspec.defstruct("Odd name/é" + "x" * 80, [("a", int)])
    assert output_spec(odd).name == "Odd_name__" + "x" * 54
    assert output_spec(list[int]).name == "list"
    assert output_spec(Contact).name == "Contact"


def test_a_type_msgspec_cannot_validate() -> None:
    with pytest.raises(TypeError, match=r"output=<class 'object'> is not a type msgspec can validate"):
        OutputSpec(object)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "Ada", "emails": "ada@example.org"}', "Expected `array`, got `str` - at `$.emails`"),
        ('{"name": "Ada", "emails": [], "address": {"street": "x"}}',
         "Object missing required field `city` - at `$.address`"),
        ('{"name": "Ada", "emails": [1]}', "Expected `str`, got `int` - at `$.emails[0]`"),
        ('{"name": "Ada", "emails": []', "Input data was truncated"),
        ('{"name": "Ada" "emails": []}', "JSON is malformed: expected ',' or '}' (byte 15)"),
        ("", "Input data was truncated"),
    ],
)  # fmt: skip
def test_an_answer_that_does_not_validate(text: str, message: str) -> None:
    with pytest.raises(OutputValidationError) as raised:
        output_spec(Contact).validate(text)
    error = raised.value
    assert (error.message, error.raw, error.output_name) == (message, text, "Contact")
    assert str(error) == f"the answer is not a valid Contact: {message}"


def test_an_answer_is_converted_to_the_type() -> None:
    assert output_spec(Point).validate('{"x": 1.5}') == Point(1.5, 0.0)
    assert output_spec(Partial).validate('{"b": "q"}') == {"b": "q"}
    assert output_spec(Pets).validate('{"pets": [{"type": "dog"}, {"type": "cat", "lives": 9}]}') == Pets(
        pets=[Dog(), Cat(lives=9)]
    )


# -- the strict schema accepts what the type accepts, and only that ------------------------------

addresses = st.builds(Address, street=st.text(), city=st.text())
contacts = st.builds(
    Contact, name=st.text(), emails=st.lists(st.text()), address=st.none() | addresses, vip=st.booleans()
)


@settings(max_examples=100, deadline=None)
@given(contact=contacts)
def test_every_value_of_the_type_as_encoded_fits_the_strict_schema(contact: Contact) -> None:
    strict = output_spec(Contact).strict_schema
    document = msgspec.json.decode(msgspec.json.encode(contact))
    assert list(Draft202012Validator(strict).iter_errors(document)) == []
    assert output_spec(Contact).validate(msgspec.json.encode(contact).decode()) == contact


@pytest.mark.parametrize(
    "document",
    [
        {"name": "Ada", "emails": [], "address": None, "vip": False, "extra": 1},
        {"name": "Ada", "emails": [], "address": {"street": "s", "city": "c", "zip": "1"}, "vip": False},
        {"name": "Ada", "emails": [], "address": {"street": "s"}, "vip": False},
        {"name": 1, "emails": [], "address": None, "vip": False},
        {"name": "Ada", "emails": [None], "address": None, "vip": False},
    ],
)
def test_documents_the_strict_schema_rejects(document: dict[str, Any]) -> None:
    strict = output_spec(Contact).strict_schema
    assert list(Draft202012Validator(strict).iter_errors(document)) != []


HOME = {"street": "s", "city": "c"}


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        (Described, {"home": HOME, "rating": 3, "colour": "blue", "size": "L", "id": None}),
        (Described, {"home": HOME, "rating": 5, "colour": "red", "size": "S",
                     "id": "12345678-1234-5678-1234-567812345678"}),
        (Node, {"value": 1, "children": [{"value": 2, "children": []}]}),
        (Partial, {"a": 1, "b": "x"}),
        (Point, {"x": 1.0, "y": 2.5}),
        (Pets, {"pets": [{"type": "cat", "lives": 9}, {"type": "dog", "good": False}]}),
    ],
)  # fmt: skip
def test_documents_the_strict_schema_accepts_are_values_of_the_type(kind: Any, document: Any) -> None:
    spec = output_spec(kind)
    assert list(Draft202012Validator(spec.strict_schema).iter_errors(document)) == []
    spec.validate(msgspec.json.encode(document).decode())  # msgspec accepts it too


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        (Described, {"home": HOME, "rating": 6, "colour": "red", "size": "S", "id": None}),
        (Described, {"home": HOME, "rating": 2, "colour": "green", "size": "S", "id": None}),
        (Pets, {"pets": [{"type": "cow"}]}),
        (Node, {"value": 1, "children": [{"value": "2", "children": []}]}),
    ],
)  # fmt: skip
def test_documents_the_type_rejects_the_strict_schema_rejects(kind: Any, document: Any) -> None:
    spec = output_spec(kind)
    with pytest.raises(OutputValidationError):
        spec.validate(msgspec.json.encode(document).decode())
    assert list(Draft202012Validator(spec.strict_schema).iter_errors(document)) != []
