"""Decoding by the declared type: a plain recorded value becomes that type, or a named error.

A journal holds a plain JSON object where the effect returned a dict (or a
tool wrote the journal without tags); a program that declares `into=T`
must get a `T` back on replay or resume, never the dict.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from typing import Any, Generic, Literal, NewType, Protocol, TypedDict, TypeVar

import pydantic
import pytest
from attrs import field, frozen

from mce import Journal, JournalCorrupt, Ok, effect, run_sync
from mce.codec import DecodeError, decode, encode


@frozen
class Forecast:
    city: str
    celsius: float


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


@dataclasses.dataclass(frozen=True)
class Spot:  # the same fields as Point
    x: int
    y: int = 0


@frozen
class Node:
    kids: list[Node]


G = TypeVar("G")


@frozen
class Box(Generic[G]):
    item: G
    items: list[G] = field(factory=list)


@frozen(eq=False)  # hashable by identity, though it holds a dict
class Chain:  # one field of each kind a recursive class nests through
    tup: tuple[Chain, ...] = ()
    bag: frozenset[Chain] = frozenset()
    ids: dict[int, Chain] = field(factory=dict)
    next: Chain | None = None


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class User(pydantic.BaseModel):
    name: str
    age: int


@frozen
class Report:
    where: Point
    colour: Colour
    forecasts: list[Forecast]
    by_city: dict[str, Forecast]
    corner: tuple[int, int]
    tags: frozenset[str] = frozenset()


class Team(pydantic.BaseModel):
    lead: User
    members: list[User]


# ------------------------------------------------------------- plain values become the declared type


def test_a_plain_object_decodes_as_the_declared_attrs_class() -> None:
    assert decode({"city": "Porto", "celsius": 21.5}, Forecast) == Forecast("Porto", 21.5)


def test_a_plain_object_decodes_as_the_declared_dataclass_defaults_applied() -> None:
    assert decode({"x": 1}, Point) == Point(1, 0)


def test_a_plain_object_decodes_as_the_declared_pydantic_model() -> None:
    out = decode({"name": "Ana", "age": 30}, User)
    assert type(out) is User and out == User(name="Ana", age=30)


def test_a_plain_value_decodes_as_the_declared_enum() -> None:
    assert decode("red", Colour) is Colour.RED
    assert decode(["red", "blue"], list[Colour]) == [Colour.RED, Colour.BLUE]


def test_nested_plain_values_decode_by_the_field_annotations() -> None:
    data = {
        "where": {"x": 1, "y": 2},
        "colour": "blue",
        "forecasts": [{"city": "Porto", "celsius": 21}],
        "by_city": {"Faro": {"city": "Faro", "celsius": 25.0}},
        "corner": [3, 4],
        "tags": ["b", "a"],
    }
    assert decode(data, Report) == Report(
        Point(1, 2),
        Colour.BLUE,
        [Forecast("Porto", 21)],
        {"Faro": Forecast("Faro", 25.0)},
        (3, 4),
        frozenset({"a", "b"}),
    )


def test_nested_plain_objects_decode_as_pydantic_models() -> None:
    data = {"lead": {"name": "Ana", "age": 30}, "members": [{"name": "Rui", "age": 4}]}
    out = decode(data, Team)
    assert out == Team(lead=User(name="Ana", age=30), members=[User(name="Rui", age=4)])


def test_containers_of_classes_decode_each_item() -> None:
    point = {"x": 1, "y": 2}
    assert decode([point, point], list[Point]) == [Point(1, 2), Point(1, 2)]
    assert decode({"a": point}, dict[str, Point]) == {"a": Point(1, 2)}
    assert decode([point], tuple[Point, ...]) == (Point(1, 2),)
    assert decode([1, "red"], tuple[int, Colour]) == (1, Colour.RED)
    assert decode([1, 2], set[int]) == {1, 2}


def test_optional_and_unions_pick_the_member_that_fits() -> None:
    assert decode(None, Point | None) is None
    assert decode({"x": 5}, Point | None) == Point(5)
    assert decode({"city": "Faro", "celsius": 1.0}, Point | Forecast) == Forecast("Faro", 1.0)
    assert decode({"x": 5}, Point | dict[str, Any]) == {"x": 5}  # a dict fits as it is


def test_a_union_decodes_by_its_own_member_order_whatever_was_decoded_before() -> None:
    both = {"x": 1}  # fits Point and Spot: the first member written wins
    for into, first in [(Point | Spot, Point), (Spot | Point, Spot), (Point | Spot, Point)]:
        assert type(decode(both, into)) is first
    for into, first in [(list[Spot | Point], Spot), (list[Point | Spot], Point)]:
        assert type(decode([both], into)[0]) is first
    for into, first in [(dict[str, Point | Spot], Point), (dict[str, Spot | Point], Spot)]:
        assert type(decode({"k": both}, into)["k"]) is first


def test_a_union_of_containers_tries_each_member_in_turn() -> None:
    assert decode(["a"], list[int] | list[str]) == ["a"]
    assert decode({"k": {"x": 1}}, dict[str, int] | dict[str, Point]) == {"k": Point(1)}
    assert decode([1, 2], tuple[str, str] | tuple[int, int]) == (1, 2)
    assert decode([1], list[str] | tuple[int, ...]) == (1,)  # a list first, then a tuple
    assert decode({"$tuple": [1]}, tuple[str] | tuple[int]) == (1,)
    assert decode({"$tuple": ["a"]}, tuple[int, int] | tuple[str, ...]) == ("a",)
    assert decode({"$tuple": [1, 2, 3]}, tuple[int, int] | tuple[str, str]) == (1, 2, 3)
    assert decode({"$set": ["red"]}, set[int] | set[Colour]) == {Colour.RED}
    assert decode({"$dict": [[1, {"x": 1}]]}, dict[int, int] | dict[int, Point]) == {1: Point(1)}


def test_a_value_that_fits_no_member_of_a_union_names_each_member_tried() -> None:
    error = _error([{"z": 1}], list[int] | list[Point])
    assert error.where == "value"
    assert error.reason == (
        "the journal holds a JSON array where the program declares list[int] | list[Point]; "
        "tried list[int] (value[0]: the journal holds a JSON object where the program "
        "declares int), list[Point] (value[0]: Point has no field 'z' (was it renamed?))"
    )
    tagged = _error({"$tuple": ["a"]}, tuple[int] | tuple[float])
    assert tagged.reason.startswith(
        "the journal holds a tuple where the program declares tuple[int] | tuple[float]; "
        "tried tuple[int] (value[0]: "
    )


def test_a_value_nested_deeper_than_the_stack_allows_is_a_decode_error_naming_where() -> None:
    typed: Any = {"kids": []}
    untyped: Any = 1
    for _ in range(5000):
        typed, untyped = {"kids": [typed]}, [untyped]
    for data, into, path in [
        (typed, Node, "value.kids[0].kids[0]."),
        (untyped, None, "value[0][0]"),
    ]:
        with pytest.raises(DecodeError, match="nested too deeply") as caught:
            decode(data, into)
        assert caught.value.where.startswith(path)


@pytest.mark.parametrize("field", ["tup", "bag", "ids", "next"])
def test_a_deep_value_encode_journals_at_the_default_recursion_limit_decodes(field: str) -> None:
    """Decoding takes no more stack frames a level than encoding: 190 levels of a
    tuple, frozenset or int-keyed dict field were a RecursionError before."""
    value = Chain()
    for _ in range(190 if field != "next" else 300):  # `next`: 2 frames a level
        kid = {"tup": (value,), "bag": frozenset([value]), "ids": {1: value}, "next": value}
        value = Chain(**{field: kid[field]})
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default (other tests may have raised it)
    try:
        journaled = encode(value)
        assert encode(decode(journaled, Chain)) == journaled
    finally:
        sys.setrecursionlimit(limit)


def test_a_generic_class_decodes_its_fields_by_the_declared_arguments() -> None:
    plain = {"item": {"x": 1}, "items": [{"x": 2}]}
    assert decode(plain, Box[Point]) == Box(Point(1), [Point(2)])
    assert decode(encode(Box(Point(1), [Point(2)])), Box[Point]) == Box(Point(1), [Point(2)])
    assert decode([{"item": "red"}], list[Box[Colour]]) == [Box(Colour.RED)]
    assert decode(plain, Box | None) == Box({"x": 1}, [{"x": 2}])  # unbound: as recorded


def test_a_plain_object_inside_a_tagged_class_decodes_by_its_annotation() -> None:
    tagged = encode(Report(Point(1), Colour.RED, [], {}, (0, 0)))
    tagged["fields"]["where"] = {"x": 7}  # written by a handler that built the field as a dict
    assert decode(tagged, Report).where == Point(7)


def test_untyped_and_open_declarations_serve_the_value_as_recorded() -> None:
    data = {"city": "Porto", "celsius": 21.5}
    assert decode(data) == data
    assert decode(data, Any) == data
    assert decode(data, Forecast | Any) == Forecast("Porto", 21.5)  # built when it fits
    assert decode({"code": 7}, Forecast | Any) == {"code": 7}  # else served as recorded
    assert decode("small", Literal["small", "large"]) == "small"


def test_tagged_values_decode_exactly_as_before() -> None:
    report = Report(Point(1, 2), Colour.RED, [Forecast("a", 1.0)], {}, (1, 2), frozenset({"t"}))
    assert decode(encode(report), Report) == report
    assert decode(encode((1, 2)), tuple[int, int]) == (1, 2)
    assert decode(encode({1: Point(3)}), dict[int, Point]) == {1: Point(3)}


class Place(TypedDict):
    name: str
    at: Point


class Name(str):
    pass


class Sized_(Protocol):
    def size(self) -> int: ...


UserId = NewType("UserId", int)
T = TypeVar("T")


def test_a_typed_dict_stays_a_dict_its_values_decoded_by_their_annotations() -> None:
    out = decode({"name": "home", "at": {"x": 1}}, Place)
    assert type(out) is dict and out == {"name": "home", "at": Point(1)}


def test_new_types_and_subclasses_of_str_accept_what_encode_writes_for_them() -> None:
    assert decode([1, 2], list[UserId]) == [1, 2]
    assert decode({"a": "x"}, dict[str, Name]) == {"a": "x"}
    assert encode(Name("x")) == "x"
    assert _error(["x"], list[UserId]).where == "value[0]"


def test_a_declared_subclass_of_str_int_or_float_is_made_again_from_its_base() -> None:
    class Count(int):
        pass

    class Money(float):
        pass

    for data, into, made in [("x", Name, Name), (3, Count, Count), (3, Money, Money)]:
        assert type(decode(data, into)) is made and decode(data, into) == data
    assert [type(v) for v in decode(["x", "y"], list[Name])] == [Name, Name]
    assert type(decode("x", Name | int)) is Name and decode(1, Name | int) == 1
    assert _error(2, Name).reason == "the journal holds 2 where the program declares Name"


def test_types_the_codec_cannot_check_serve_the_value_as_recorded() -> None:
    for into in (T, Sized_, "Forecast", object):
        assert decode({"city": 1}, into) == {"city": 1}
        assert decode([1], into) == [1]


def test_a_float_field_takes_a_whole_number_and_a_bool_field_no_number() -> None:
    assert decode({"city": "a", "celsius": 3}, Forecast) == Forecast("a", 3)
    assert _error([1], list[bool]).where == "value[0]"
    assert "Literal['a', 'b']" in _error(["c"], list[Literal["a", "b"]]).reason


def test_the_declared_type_is_shown_without_module_paths() -> None:
    err = _error({"x": 1}, list[Point] | None)
    assert (
        err.reason
        == "the journal holds a JSON object where the program declares list[Point] | None"
    )


# ------------------------------------------------------------- values that do not fit: named errors


def _error(data: Any, into: Any) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode(data, into)
    return caught.value


def test_a_field_of_the_wrong_kind_is_named() -> None:
    err = _error({"city": "Porto", "celsius": "warm"}, Forecast)
    assert err.where == "value.celsius"
    assert "'warm'" in err.reason and "float" in err.reason


def test_a_missing_required_field_is_named() -> None:
    err = _error({"city": "Porto"}, Forecast)
    assert err.where == "value.celsius"
    assert "Forecast" in err.reason and "celsius" in err.reason


def test_an_unknown_field_is_named() -> None:
    err = _error({"x": 1, "z": 2}, Point)
    assert err.where == "value" and "Point has no field 'z'" in err.reason


def test_a_pydantic_model_names_the_field_it_refuses() -> None:
    err = _error({"name": "Ana", "age": "old"}, User)
    assert err.where == "value.age"
    assert "User" in err.reason and "'old'" in err.reason
    missing = _error({"name": "Ana"}, User)
    assert missing.where == "value.age" and "required" in missing.reason


def test_a_nested_misfit_names_its_path() -> None:
    err = _error({"lead": {"name": "Ana", "age": 1}, "members": [{"name": 3, "age": 1}]}, Team)
    assert err.where == "value.members[0].name"
    err = _error([{"x": 1}, {"x": "one"}], list[Point])
    assert err.where == "value[1].x"


def test_a_value_that_is_not_a_member_of_the_declared_enum_is_named() -> None:
    err = _error(
        {"where": {"x": 1}, "colour": "green", "forecasts": [], "by_city": {}, "corner": [0, 0]},
        Report,
    )
    assert err.where == "value.colour" and "'green'" in err.reason and "Colour" in err.reason


def test_a_plain_value_of_another_kind_than_declared_is_an_error() -> None:
    assert "JSON object" in _error({"x": 1}, list[int]).reason
    assert "JSON array" in _error([1, 2], Point).reason
    assert "'3'" in _error("3", int).reason
    assert _error([1, 2, 3], tuple[int, int]).where == "value"
    assert "Point has no field 'q'" in _error({"q": 1}, Point | Forecast).reason


# ------------------------------------------------------------- replay and resume


def _journal_of(value: Any, kind: str = "weather") -> Journal:
    j = Journal()
    assert run_sync(effect(kind, "Porto", handler=lambda r: value), None, journal=j) == Ok(
        value, None
    )
    return j


def test_replay_serves_a_plain_recorded_object_as_the_declared_class() -> None:
    j = _journal_of({"city": "Porto", "celsius": 21.5})
    prog = effect("weather", "Porto", into=Forecast)
    assert run_sync(prog, None, journal=j, mode="replay") == Ok(Forecast("Porto", 21.5), None)


def test_replay_serves_a_plain_recorded_object_as_the_declared_pydantic_model() -> None:
    j = _journal_of({"name": "Ana", "age": 30}, kind="user")
    out = run_sync(effect("user", "Porto", into=User), None, journal=j, mode="replay")
    assert type(out.value) is User and out == Ok(User(name="Ana", age=30), None)


def test_resume_serves_the_declared_class_then_runs_the_rest_live() -> None:
    j = _journal_of({"city": "Porto", "celsius": 21.5})  # the run stopped after its first effect
    prog = effect("weather", "Porto", into=Forecast).then(
        lambda f: effect("shout", f.city, handler=str.upper)
    )
    assert run_sync(prog, None, journal=j, mode="resume") == Ok("PORTO", None)


def test_replay_of_a_misfit_names_journal_position_and_field() -> None:
    j = _journal_of({"city": "Porto", "celsius": "warm"})
    with pytest.raises(JournalCorrupt) as caught:
        run_sync(effect("weather", "Porto", into=Forecast), None, journal=j, mode="replay")
    assert caught.value.reason.startswith("position 0: value.celsius: ")
    assert "'warm'" in caught.value.reason


def test_replay_of_a_pydantic_misfit_names_position_and_field() -> None:
    j = _journal_of({"name": "Ana"}, kind="user")
    with pytest.raises(JournalCorrupt) as caught:
        run_sync(effect("user", "Porto", into=User), None, journal=j, mode="replay")
    assert caught.value.reason.startswith("position 0: value.age: ")


def test_replay_serves_a_plain_recorded_string_as_the_declared_enum() -> None:
    j = _journal_of("red", kind="colour")
    out = run_sync(effect("colour", "Porto", into=Colour), None, journal=j, mode="replay")
    assert out == Ok(Colour.RED, None)


def test_a_recorded_plain_failure_still_replays_as_recorded() -> None:
    from mce import EffectFailed

    def refuse(r: Any) -> Any:
        raise EffectFailed({"code": 429})

    j = Journal()
    live = run_sync(effect("api", 1, handler=refuse, into=Forecast), None, journal=j)
    assert run_sync(effect("api", 1, into=Forecast), None, journal=j, mode="replay") == live
