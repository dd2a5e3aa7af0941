"""Structured output: what ``CompletionRequest(output=T)`` asks of a provider; how the answer becomes a ``T``.

``T`` is any type msgspec validates: a ``msgspec.Struct``, a dataclass, a
``TypedDict``, ``list[Item]``... ``output_spec(T)`` holds, made once per type
and cached (never per request):

* ``schema``: msgspec's JSON schema of ``T`` with the root definition inlined
  (providers want an object at the root, not a ``$ref``); the other
  definitions stay under ``$defs``. Anthropic's output tool takes it as its
  ``input_schema``.
* ``strict_schema``: the same adapted for OpenAI's strict mode, or ``None`` where
  strict mode cannot express ``T`` exactly. Adapting sets ``additionalProperties:
  false`` and lists every property as required on each object (a field with a
  default is then always sent, which ``T`` accepts), inlines a ``$ref`` that has
  sibling keywords (a field's description), and drops the keywords that only
  annotate (``default``, ``examples``, ``$comment``, ``discriminator``). A schema
  that needs anything strict mode lacks stays non-strict rather than being
  loosened into one that accepts values ``T`` rejects: a root that is not an
  object (a list, a union), a mapping with free keys (``dict[str, int]``), a
  tuple (``prefixItems``), a set (``uniqueItems``), length limits on strings
  (``minLength``), a ``format`` strict mode does not know (``decimal``). The
  keywords strict mode takes are those of OpenAI's Structured Outputs guide
  ("Supported schemas"): ``type``, ``properties``, ``required``,
  ``additionalProperties``, ``items``, ``anyOf``, ``enum``, ``const``, ``$ref``,
  ``$defs``, ``title``, ``description``, ``pattern``, ``format`` (date-time,
  time, date, duration, email, hostname, ipv4, ipv6, uuid), ``minimum``,
  ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``,
  ``minItems`` and ``maxItems``.
* ``name``: the type's name as the APIs accept it (``[A-Za-z0-9_-]``, at most
  64 characters).
* ``validate(text)``: the answer decoded and converted to ``T`` by msgspec, or
  ``OutputValidationError`` with the raw text and msgspec's message (which
  names the path: ``Expected `int`, got `str` - at `$.items[0].quantity```).
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import msgspec

from rxllm.errors import OutputValidationError

__all__ = ["OutputSpec", "output_spec"]

_STRICT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "enum",
        "const",
        "$ref",
        "$defs",
        "title",
        "description",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Keywords that only annotate: dropping them changes no value the schema accepts.
_ANNOTATIONS = frozenset({"default", "examples", "$comment", "discriminator"})
_DEFS = "#/$defs/"


class OutputSpec:
    """What one output type asks for and how its answers are validated (see the module docstring)."""

    __slots__ = ("_decoder", "name", "schema", "strict_schema", "type")

    def __init__(self, output_type: Any) -> None:
        try:
            raw = msgspec.json.schema(output_type)
            self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(output_type)
        except TypeError as error:
            raise TypeError(f"output={output_type!r} is not a type msgspec can validate: {error}") from None
        self.type = output_type
        self.name = _api_name(output_type)
        self.schema: dict[str, Any] = _inline_root(_null_last(raw))
        self.strict_schema: dict[str, Any] | None = _strict(self.schema)

    def __repr__(self) -> str:
        return f"OutputSpec({self.name}, strict={self.strict})"

    @property
    def strict(self) -> bool:
        """Whether OpenAI's strict mode can express the type exactly."""
        return self.strict_schema is not None

    @property
    def wire_schema(self) -> dict[str, Any]:
        """The schema to send with ``strict``: the strict one where there is one, else ``schema``."""
        return self.strict_schema if self.strict_schema is not None else self.schema

    @property
    def is_object(self) -> bool:
        """Whether the schema's root is a JSON object (what a tool's input must be)."""
        return self.schema.get("type") == "object"

    def validate(self, text: str) -> Any:
        """The answer as a value of the type; ``OutputValidationError`` when it is not one."""
        try:
            return self._decoder.decode(text)
        except msgspec.DecodeError as error:  # ValidationError is a DecodeError too
            raise OutputValidationError(str(error), text, output_name=self.name) from None


@functools.lru_cache(maxsize=256)
def _cached(output_type: Any) -> OutputSpec:
    return OutputSpec(output_type)


def output_spec(output_type: Any) -> OutputSpec:
    """The ``OutputSpec`` of a type, made once and then shared by every request that asks for it."""
    try:
        hash(output_type)
    except TypeError:  # an unhashable type form (rare): made each time
        return OutputSpec(output_type)
    return _cached(output_type)


def _api_name(output_type: Any) -> str:
    name = getattr(output_type, "__name__", None) or "output"
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(name))[:64]


def _inline_root(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec's ``{"$ref": "#/$defs/T", "$defs": {...}}`` as ``T``'s definition at the root."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith(_DEFS) or set(schema) - {"$ref", "$defs"}:
        return schema
    defs: dict[str, Any] = schema.get("$defs", {})
    name = ref[len(_DEFS) :]
    root = dict(defs[name])
    # The root's own definition stays where something refers to it (a recursive type).
    kept = {key: value for key, value in defs.items() if key != name or _refers_to(defs, ref)}
    if kept:
        root["$defs"] = kept
    return root


def _null_last(node: Any) -> Any:
    """``node`` with each ``anyOf`` listing ``{"type": "null"}`` after the other options.

    msgspec versions order an optional field's options differently; one order
    makes the schema sent, and so the request body, the same whichever is installed.
    """
    if isinstance(node, dict):
        out = {key: _null_last(value) for key, value in node.items()}
        options = out.get("anyOf")
        if isinstance(options, list):
            out["anyOf"] = [o for o in options if o != {"type": "null"}] + [
                o for o in options if o == {"type": "null"}
            ]
        return out
    if isinstance(node, list):
        return [_null_last(value) for value in node]
    return node


def _refers_to(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_refers_to(value, ref) for value in node.values())
    if isinstance(node, list):
        return any(_refers_to(value, ref) for value in node)
    return False


class _NotStrict(Exception):
    pass


def _strict(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` adapted to strict mode, or ``None`` when strict mode cannot express it exactly."""
    if schema.get("type") != "object":
        return None  # strict mode wants an object at the root
    defs: dict[str, Any] = schema.get("$defs", {})
    try:
        adapted: dict[str, Any] = _strict_node(copy.deepcopy(schema), defs)
    except _NotStrict:
        return None
    return adapted


def _strict_node(node: Any, defs: dict[str, Any]) -> Any:
    if not isinstance(node, dict):
        raise _NotStrict
    for key in [key for key in node if key in _ANNOTATIONS]:
        del node[key]
    unsupported = set(node) - _STRICT_KEYWORDS
    if unsupported:
        raise _NotStrict
    if "$ref" in node and len(node) > 1:
        # A reference with siblings (a field's description): the definition inlined, siblings kept.
        ref = node.pop("$ref")
        if not isinstance(ref, str) or not ref.startswith(_DEFS) or ref[len(_DEFS) :] not in defs:
            raise _NotStrict
        node = {**copy.deepcopy(defs[ref[len(_DEFS) :]]), **node}
        return _strict_node(node, defs)
    if "format" in node and node["format"] not in _STRICT_FORMATS:
        raise _NotStrict
    if node.get("type") == "object" or "properties" in node:
        if "properties" not in node or node.get("additionalProperties", False) is not False:
            raise _NotStrict  # free keys (a dict): strict mode needs every property named
        node["properties"] = {name: _strict_node(value, defs) for name, value in node["properties"].items()}
        node["required"] = list(node["properties"])
        node["additionalProperties"] = False
    if "items" in node:
        node["items"] = _strict_node(node["items"], defs)
    if "anyOf" in node:
        node["anyOf"] = [_strict_node(option, defs) for option in node["anyOf"]]
    if "$defs" in node:
        node["$defs"] = {name: _strict_node(value, defs) for name, value in node["$defs"].items()}
    return node
