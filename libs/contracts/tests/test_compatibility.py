"""The schema compatibility checker finds what breaks consumers and accepts what does not."""

from typing import Any

import pytest

from switchboard_contracts.compatibility import breaking_changes

STRING = {"type": "string"}
NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


def obj(required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


def nested(inner: dict[str, Any]) -> dict[str, Any]:
    """A root whose `caller` property refers to `inner` through $defs, as pydantic exports."""
    return {**obj(("caller",), caller={"$ref": "#/$defs/Caller"}), "$defs": {"Caller": inner}}


OLD = obj(("id", "name"), id=STRING, name=STRING, note=NULLABLE_STRING, score={"type": "integer"})


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(OLD, OLD) == []


def test_added_optional_property_is_compatible() -> None:
    new = {**OLD, "properties": {**OLD["properties"], "extra": NULLABLE_STRING}}
    assert breaking_changes(OLD, new) == []


def test_removed_property_breaks() -> None:
    props = {k: v for k, v in OLD["properties"].items() if k != "note"}
    assert breaking_changes(OLD, {**OLD, "properties": props}) == ["note: property removed"]


def test_retyped_property_breaks() -> None:
    new = {**OLD, "properties": {**OLD["properties"], "name": {"type": "integer"}}}
    [violation] = breaking_changes(OLD, new)
    assert violation.startswith("name: type changed: string")


def test_new_required_property_breaks() -> None:
    new = obj(("id", "name", "tenant_id"), **OLD["properties"], tenant_id=STRING)
    assert breaking_changes(OLD, new) == ["tenant_id: new required property"]


def test_property_that_became_required_breaks() -> None:
    new = {**OLD, "required": ["id", "name", "note"]}
    assert breaking_changes(OLD, new) == ["note: property became required"]


def test_optional_property_that_is_no_longer_nullable_breaks() -> None:
    new = {**OLD, "properties": {**OLD["properties"], "note": STRING}}
    assert breaking_changes(OLD, new) == ["note: type changed: null is no longer accepted (string)"]


def test_required_property_that_becomes_optional_is_compatible() -> None:
    new = {**OLD, "required": ["id"], "properties": {**OLD["properties"], "name": NULLABLE_STRING}}
    assert breaking_changes(OLD, new) == []


def test_integer_widened_to_number_is_compatible_but_not_the_reverse() -> None:
    wide = {**OLD, "properties": {**OLD["properties"], "score": {"type": "number"}}}
    assert breaking_changes(OLD, wide) == []
    assert breaking_changes(wide, OLD) != []


def test_nested_change_behind_a_ref_names_the_path() -> None:
    old = nested(obj(("phone",), phone=STRING, email=NULLABLE_STRING))
    new = nested(obj(("phone",), phone={"type": "integer"}))
    violations = breaking_changes(old, new)
    assert "caller.email: property removed" in violations
    assert any(v.startswith("caller.phone: type changed") for v in violations)


def test_enum_losing_a_member_breaks_but_gaining_one_does_not() -> None:
    old = nested({"type": "string", "enum": ["email", "sms"]})
    gained = nested({"type": "string", "enum": ["email", "sms", "fax"]})
    lost = nested({"type": "string", "enum": ["email"]})
    assert breaking_changes(old, gained) == []
    assert breaking_changes(old, lost) == ['caller: no longer accepts "sms"']


def test_array_item_type_change_breaks() -> None:
    old = obj(items={"type": "array", "items": {"type": "string"}})
    new = obj(items={"type": "array", "items": {"type": "integer"}})
    [violation] = breaking_changes(old, new)
    assert violation.startswith("items[]: type changed")


def test_change_inside_array_of_referenced_objects_names_the_path() -> None:
    old = {
        **obj(people={"type": "array", "items": {"$ref": "#/$defs/P"}}),
        "$defs": {"P": obj(name=STRING)},
    }
    new = {**old, "$defs": {"P": obj(("age",), name=STRING, age={"type": "integer"})}}
    assert breaking_changes(old, new) == ["people[].age: new required property"]


def test_discriminated_union_losing_or_changing_a_variant_breaks_but_gaining_one_does_not() -> None:
    def scope(*variants: dict[str, Any]) -> dict[str, Any]:
        return obj(("scope",), scope={"oneOf": list(variants)})

    category = obj(("kind", "cutoff"), kind={"const": "category", "type": "string"}, cutoff=STRING)
    tenant = obj(
        ("kind", "tenant_id"), kind={"const": "tenant", "type": "string"}, tenant_id=STRING
    )
    tenant_v2 = obj(("kind", "id"), kind={"const": "tenant", "type": "string"}, id=STRING)
    assert breaking_changes(scope(category, tenant), scope(category, tenant)) == []
    assert breaking_changes(scope(category, tenant), scope(category)) == [
        "scope: type changed: object(kind=tenant) is no longer accepted (object(kind=category))"
    ]
    assert breaking_changes(scope(category), scope(category, tenant)) == []
    assert breaking_changes(scope(category, tenant), scope(category, tenant_v2)) == [
        "scope(kind=tenant).tenant_id: property removed",
        "scope(kind=tenant).id: new required property",
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"type": "string", "maxLength": 200}, {"type": "string", "maxLength": 100}),
        ({"type": "string"}, {"type": "string", "minLength": 1}),
        ({"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 1}),
        ({"type": "string"}, {"type": "string", "pattern": "^[A-Z]+$"}),
        ({"type": "string"}, {"type": "string", "format": "date-time"}),
        ({}, {"type": "string"}),
    ],
)
def test_tightened_constraint_breaks(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert breaking_changes(nested(old), nested(new)) != []


def test_loosened_constraint_and_documentation_changes_are_compatible() -> None:
    old = nested({"type": "string", "maxLength": 100, "description": "old", "title": "A"})
    new = nested({"type": "string", "maxLength": 200, "description": "new", "examples": ["x"]})
    assert breaking_changes(old, new) == []
