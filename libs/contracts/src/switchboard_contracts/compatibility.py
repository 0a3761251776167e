"""Find the changes between two exported JSON Schemas of one event that would break consumers.

Compatible means a consumer built on the new schema accepts every message valid under the
old one (old messages stay in Kafka and are replayed) and still finds every property it
had. Such a change only widens what consumers accept, so consumers are deployed before a
producer sends anything new. Breaking: a property removed, retyped or made required; a
new required property; an enum or union losing a member; a tightened constraint.
Compatible: an added optional property, enum member or union variant; a loosened
constraint; changed titles, descriptions and examples.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]

_LOWER_BOUNDS = ("minLength", "minItems", "minimum", "exclusiveMinimum")
_UPPER_BOUNDS = ("maxLength", "maxItems", "maximum", "exclusiveMaximum")
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """List, as `path: what changed`, every change from `old` to `new` that breaks consumers."""
    checker = _Checker(old, new)
    checker.compare(old, new, "")
    return checker.violations


def _where(path: str) -> str:
    return path or "(root)"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Checker:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.violations: list[str] = []
        self._active: set[tuple[str, str]] = set()

    def report(self, path: str, message: str) -> None:
        self.violations.append(f"{_where(path)}: {message}")

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        # Recursive models refer to themselves; compare each pair of definitions once per branch.
        pair = (str(old.get("$ref", id(old))), str(new.get("$ref", id(new))))
        if pair in self._active:
            return
        self._active.add(pair)
        try:
            self._compare_union(
                _alternatives(old, self.old_root), _alternatives(new, self.new_root), path
            )
        finally:
            self._active.discard(pair)

    def _compare_union(self, olds: list[Schema], news: list[Schema], path: str) -> None:
        if any(_label(n) == "any" for n in news):
            return
        for old in olds:
            match = _match(old, news)
            if match is None:
                wanted = " | ".join(_describe(n) for n in news)
                self.report(
                    path, f"type changed: {_describe(old)} is no longer accepted ({wanted})"
                )
                continue
            tag = _tag(old)
            self._compare_one(old, match, f"{path}({tag})" if tag and len(olds) > 1 else path)

    def _compare_one(self, old: Schema, new: Schema, path: str) -> None:
        self._compare_values(old, new, path)
        self._compare_bounds(old, new, path)
        if "properties" in old or "properties" in new:
            self._compare_object(old, new, path)
        if isinstance(old.get("additionalProperties"), Mapping) and isinstance(
            new.get("additionalProperties"), Mapping
        ):
            self.compare(old["additionalProperties"], new["additionalProperties"], f"{path}{{*}}")
        if "items" in old and "items" in new:
            self.compare(old["items"], new["items"], f"{path}[]")
        old_prefix, new_prefix = old.get("prefixItems", ()), new.get("prefixItems", ())
        for i, (o, n) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(o, n, f"{path}[{i}]")

    def _compare_values(self, old: Schema, new: Schema, path: str) -> None:
        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if new_values is None:
            return
        if old_values is None:
            self.report(path, f"now restricted to {', '.join(sorted(new_values))}")
            return
        lost = old_values - new_values
        if lost:
            self.report(path, f"no longer accepts {', '.join(sorted(lost))}")

    def _compare_bounds(self, old: Schema, new: Schema, path: str) -> None:
        for key in _LOWER_BOUNDS:
            if key in new and (key not in old or new[key] > old[key]):
                self.report(path, f"{key} tightened from {old.get(key, 'none')} to {new[key]}")
        for key in _UPPER_BOUNDS:
            if key in new and (key not in old or new[key] < old[key]):
                self.report(path, f"{key} tightened from {old.get(key, 'none')} to {new[key]}")
        for key in ("pattern", "format"):
            if key in new and new[key] != old.get(key):
                self.report(path, f"{key} changed from {old.get(key)!r} to {new[key]!r}")

    def _compare_object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_prop in old_props.items():
            if name not in new_props:
                self.report(_join(path, name), "property removed")
                continue
            if name in new_required and name not in old_required:
                self.report(_join(path, name), "property became required")
            self.compare(old_prop, new_props[name], _join(path, name))
        for name in sorted(new_required - set(old_props)):
            self.report(_join(path, name), "new required property")


def _resolve(schema: Schema, root: Schema) -> Schema:
    """Follow local `$ref`s (and single-element `allOf`), keeping annotations beside them."""
    seen: set[str] = set()
    while True:
        if "$ref" in schema:
            ref = str(schema["$ref"])
            if not ref.startswith("#/") or ref in seen:
                raise ValueError(f"cannot resolve $ref {ref!r}")
            seen.add(ref)
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        elif len(schema.get("allOf", ())) == 1:
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            schema = {**schema["allOf"][0], **rest}
        else:
            return schema


def _alternatives(schema: Schema, root: Schema) -> list[Schema]:
    """Split a schema into the alternatives of its `anyOf` / `oneOf` / type list."""
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [alt for sub in schema[key] for alt in _alternatives(sub, root)]
    if isinstance(schema.get("type"), list):
        return [{**schema, "type": t} for t in schema["type"]]
    return [schema]


def _allowed_values(schema: Schema) -> set[str] | None:
    if "const" in schema:
        return {json.dumps(schema["const"], sort_keys=True)}
    if "enum" in schema:
        return {json.dumps(v, sort_keys=True) for v in schema["enum"]}
    return None


def _label(schema: Schema) -> str:
    """Name an alternative's kind: its JSON type, or `any` when unconstrained."""
    if "type" in schema:
        return str(schema["type"])
    values = [schema["const"]] if "const" in schema else schema.get("enum", [])
    if values:
        return _JSON_TYPES.get(type(values[0]), "value")
    return "object" if "properties" in schema else "any"


def _describe(schema: Schema) -> str:
    """Name an alternative for a message, e.g. `string` or `object(kind=tenant)`."""
    tag = _tag(schema)
    return f"{_label(schema)}({tag})" if tag else _label(schema)


def _tag(schema: Schema) -> str:
    """The constant properties of an object alternative, e.g. `kind=category`; '' if none."""
    props: Schema = schema.get("properties", {})
    return ",".join(f"{n}={p['const']}" for n, p in sorted(props.items()) if "const" in p)


def _match(old: Schema, news: list[Schema]) -> Schema | None:
    """Pick the new alternative that takes over the old one's messages, if any."""
    label = _label(old)
    accepting = {label, "number"} if label == "integer" else {label}
    candidates = sorted(
        (n for n in news if _label(n) in accepting), key=lambda n: _label(n) != label
    )
    # Variants of a discriminated union are told apart by their constant tag properties.
    tagged = _tag(old) and any(_tag(n) for n in candidates)
    if label == "object" and (len(candidates) > 1 or tagged):
        candidates = [n for n in candidates if _tag(n) == _tag(old)]
    return candidates[0] if candidates else None
