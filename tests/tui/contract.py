"""Holds the TUI's routes and records against the daemon's OpenAPI document.

`check(document, routes)` walks every route the TUI's client calls: the operation must exist,
its query parameters and body fields must be ones the API takes, and every field of the answer
record (through nested records, tuples, dicts of records and optional fields) must be in the
answer's schema with a JSON type the record can read; a field the record requires must be
required (or have a default) there. Each problem names the route and the field, as the TUI
reads it ("products[].name").
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from tui.client import Route

# Keys from the document's root to a schema: where a rename in a test must happen.
Pointer = tuple[str, ...]
# The JSON types a record's scalar field can read.
JSON_TYPES: dict[type, frozenset[str]] = {
    str: frozenset({"string"}),
    int: frozenset({"integer"}),
    float: frozenset({"number", "integer"}),
    bool: frozenset({"boolean"}),
}
HTTP_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Read:
    """One field the TUI reads or sends, and the `properties` object that documents it."""

    call: str
    field: str
    properties: Pointer
    name: str


@dataclass
class Contract:
    """What `check` found: the problems, and every field it held against the document."""

    problems: list[str] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)


def check(document: dict[str, Any], routes: Iterable[Route[Any]]) -> Contract:
    checker = _Checker(document)
    for route in routes:
        checker.route(route)
    return checker.contract


class _Checker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.contract = Contract()

    def problem(self, call: str, text: str) -> None:
        self.contract.problems.append(f"{call}: {text}")

    def resolve(self, schema: dict[str, Any], pointer: Pointer) -> tuple[dict[str, Any], Pointer]:
        """Follow `$ref` (and a lone `allOf` wrapper) to the schema itself."""
        for _ in range(50):
            if "$ref" in schema:
                ref = str(schema["$ref"])
                assert ref.startswith("#/"), f"only local references: {ref}"
                pointer = tuple(
                    key.replace("~1", "/").replace("~0", "~") for key in ref[2:].split("/")
                )
                node: Any = self.document
                for key in pointer:
                    node = node[key]
                schema = node
            elif len(schema.get("allOf", ())) == 1 and "properties" not in schema:
                schema, pointer = schema["allOf"][0], (*pointer, "allOf", "0")
            else:
                return schema, pointer
        raise AssertionError(f"a $ref loop at {pointer}")

    # -- one route ------------------------------------------------------------------------------

    def route(self, route: Route[Any]) -> None:
        call = route.call
        operation = self.document.get("paths", {}).get(route.path, {}).get(route.method.lower())
        if operation is None:
            self.problem(call, "the API has no such route")
            return
        where: Pointer = ("paths", route.path, route.method.lower())
        taken = {
            parameter["name"]
            for parameter in operation.get("parameters", ())
            if parameter.get("in") == "query"
        }
        for name in route.query:
            if name not in taken:
                self.problem(call, f"the API has no query parameter {name!r} (sent by the TUI)")
        self.request(route, operation, where)
        if route.answer is not None:
            self.answer(route, operation, where)

    def request(self, route: Route[Any], operation: dict[str, Any], where: Pointer) -> None:
        call = route.call
        body = operation.get("requestBody")
        if body is None:
            if route.sends:
                self.problem(call, "the TUI sends a body; the API takes none")
            return
        schema = body.get("content", {}).get(HTTP_JSON, {}).get("schema")
        if schema is None:
            self.problem(call, "the API takes no JSON body")
            return
        pointer: Pointer = (*where, "requestBody", "content", HTTP_JSON, "schema")
        schema, pointer = self.resolve(schema, pointer)
        properties = schema.get("properties", {})
        for name in route.sends:
            if name in properties:
                self.contract.reads.append(
                    Read(call, f"body {name}", (*pointer, "properties"), name)
                )
            elif schema.get("additionalProperties") is not True:
                self.problem(call, f"the API's body has no field {name!r} (sent by the TUI)")
        for name in schema.get("required", ()):
            if name not in route.sends:
                self.problem(
                    call, f"the API requires the body field {name!r}; the TUI never sends it"
                )

    def answer(self, route: Route[Any], operation: dict[str, Any], where: Pointer) -> None:
        call = route.call
        responses = operation.get("responses", {})
        for status in sorted(responses):
            content = responses[status].get("content", {})
            if status.startswith("2") and HTTP_JSON in content:
                schema = content[HTTP_JSON].get("schema", {})
                pointer: Pointer = (*where, "responses", status, "content", HTTP_JSON, "schema")
                self.record(call, route.answer, schema, pointer, "")
                return
        self.problem(call, f"the API documents no JSON answer (the TUI reads {route.answer})")

    # -- one record, one value --------------------------------------------------------------------

    def record(
        self, call: str, kind: Any, schema: dict[str, Any], pointer: Pointer, path: str
    ) -> None:
        schema, pointer = self.resolve(schema, pointer)
        if schema.get("type") != "object" and "properties" not in schema:
            self.problem(call, f"{path or 'the answer'} is not an object in the API")
            return
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        hints = get_type_hints(kind)
        open_keys = getattr(kind, "OPEN_KEYS", frozenset())
        for spec in fields(kind):
            name = spec.name
            where = f"{path}.{name}" if path else name
            optional = spec.default is not MISSING or spec.default_factory is not MISSING
            reader = f"{kind.__name__}.{name}"
            if name in properties:
                self.contract.reads.append(Read(call, where, (*pointer, "properties"), name))
                documented = properties[name]
                if not optional and name not in required and "default" not in documented:
                    self.problem(
                        call, f"{where} is optional in the API; the TUI requires it ({reader})"
                    )
                self.value(call, hints[name], documented, (*pointer, "properties", name), where)
            elif name in open_keys:
                # Read from the object's extra keys: the API must allow them, the TUI must cope
                # without them.
                if schema.get("additionalProperties") is not True:
                    self.problem(
                        call, f"{where} is not in the API and the object takes no extra keys"
                    )
                if not optional:
                    self.problem(call, f"{where} is an extra key; {reader} needs a default")
            else:
                self.problem(call, f"{where} is not in the API (the TUI reads {reader})")

    def value(
        self, call: str, hint: Any, schema: dict[str, Any], pointer: Pointer, path: str
    ) -> None:
        schema, pointer = self.resolve(schema, pointer)
        args = get_args(hint)
        optional = get_origin(hint) in (Union, types.UnionType) and type(None) in args
        if optional:
            [hint] = [arg for arg in args if arg is not type(None)]
        choices = schema.get("anyOf") or schema.get("oneOf")
        if choices:
            key = "anyOf" if "anyOf" in schema else "oneOf"
            nullable = any(choice.get("type") == "null" for choice in choices)
            kinds = [
                (choice, (*pointer, key, str(n)))
                for n, choice in enumerate(choices)
                if choice.get("type") != "null"
            ]
        else:
            nullable = schema.get("type") == "null"
            kinds = [(schema, pointer)]
        if nullable and not optional:
            self.problem(call, f"{path} may be null in the API; the TUI reads it as never null")
        if len(kinds) != 1:
            self.problem(call, f"{path} has {len(kinds)} kinds in the API; the TUI reads one")
            return
        self.kind(call, hint, *kinds[0], path)

    def kind(
        self, call: str, hint: Any, schema: dict[str, Any], pointer: Pointer, path: str
    ) -> None:
        schema, pointer = self.resolve(schema, pointer)
        origin, args = get_origin(hint), get_args(hint)
        given = schema.get("type")
        if origin is tuple:
            if given != "array":
                self.problem(call, f"{path} is {given} in the API; the TUI reads a list")
                return
            items = schema.get("items", {})
            self.value(call, args[0], items, (*pointer, "items"), f"{path}[]")
        elif origin is dict:
            values = schema.get("additionalProperties")
            if given != "object" or not isinstance(values, dict):
                self.problem(call, f"{path} is not an object of {args[1]} values in the API")
                return
            self.value(call, args[1], values, (*pointer, "additionalProperties"), f"{path}.*")
        elif isinstance(hint, type) and is_dataclass(hint):
            self.record(call, hint, schema, pointer, path)
        elif hint in JSON_TYPES:
            if given not in JSON_TYPES[hint]:
                self.problem(call, f"{path} is {given} in the API; the TUI reads {hint.__name__}")
        else:
            self.problem(call, f"{path}: the checker cannot hold {hint!r} against the API")
