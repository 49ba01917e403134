from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import math
import random
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from covet import _json

if TYPE_CHECKING:
    from collections.abc import Iterator

HAVE_ORJSON = _json.USE_ORJSON
needs_orjson = pytest.mark.skipif(not HAVE_ORJSON, reason="orjson is not installed")
PATHS = [True, False] if HAVE_ORJSON else [False]


class Color(enum.Enum):
    RED = "red"
    ONE = 1
    TINY = 1.5e-7


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Line:
    start: Point
    end: Point
    when: datetime.date


Pair = collections.namedtuple("Pair", "left right")


class MyFloat(float):
    pass


class MyStr(str):
    __slots__ = ()


class MyInt(int):
    pass


class MyDict(dict[str, Any]):
    pass


class MyList(list[Any]):
    pass


UTC = datetime.UTC
PLUS_0530 = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

FLOATS = [
    0.0,
    -0.0,
    0.1,
    -0.1,
    1.0,
    1.5,
    100.0,
    1e-7,
    -1e-7,
    1e-5,
    1.5e-5,
    1e-4,
    1e-6,
    1.2345e-10,
    1e15,
    1e16,
    1e17,
    1e21,
    1e22,
    1.7976931348623157e308,
    5e-324,
    2.2250738585072014e-308,
    123456789.123456789,
    9007199254740993.0,
    1 / 3,
    2 / 3,
    math.pi,
    -math.e,
    3.14e100,
]

CORPUS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**31,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    "",
    "plain",
    "ünïcödé ✓ 日本語 😀",
    'quotes " and \\ backslash / slash',
    "".join(chr(i) for i in range(32)) + "\x7f\u2028\u2029\ufeff",
    [],
    {},
    (),
    [1, "a", None, [2, [3, {"b": ()}]]],
    {"nested": {"deeper": {"list": [1.5, {"x": None}]}}},
    {"ключ": "значение", "😀": ["ü"]},
    datetime.datetime(2024, 2, 29, 13, 45, 1),  # noqa: DTZ001
    datetime.datetime(2024, 2, 29, 13, 45, 1, 123),  # noqa: DTZ001
    datetime.datetime(2024, 2, 29, 13, 45, 1, tzinfo=UTC),
    datetime.datetime(2024, 2, 29, 13, 45, 1, 999999, tzinfo=PLUS_0530),
    datetime.date(1999, 12, 31),
    datetime.time(7, 8, 9),
    datetime.time(7, 8, 9, 10),
    datetime.time(7, 8, 9, tzinfo=UTC),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    uuid.UUID(int=0),
    decimal.Decimal("1.10"),
    decimal.Decimal("-1E+3"),
    Color.RED,
    Color.ONE,
    Color.TINY,
    Level.HIGH,
    Mode.FAST,
    Point(1, 2.5, ["a"]),
    Line(Point(0, 0.0), Point(1, 1e-7), datetime.date(2020, 1, 1)),
    Pair(1, "two"),
    MyFloat(1e-7),
    MyStr("sub"),
    MyInt(7),
    MyDict(a=1),
    MyList([1, 2]),
    {1: "int key", "s": 2},
    {True: "t", None: "n"},
    {1.5e-7: "float key", -0.0: "negative zero"},
    {Color.RED: 1, Level.LOW: 2},
    {uuid.UUID(int=1): 1},
    {datetime.date(2020, 1, 2): "date key"},
    [float("nan"), float("inf"), -float("inf")],
    {float("nan"): 1},
    2**64,
    -(2**63) - 1,
    [1, 2**100, {"big": -(2**70)}],
    {2**70: "big key"},
    *FLOATS,
    [-x for x in FLOATS],
]


@pytest.fixture
def stdlib_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_json, "USE_ORJSON", False)
    yield


def both(obj: Any) -> tuple[bytes, bytes]:
    assert _json.USE_ORJSON
    fast = _json.dumps(obj)
    _json.USE_ORJSON = False
    try:
        slow = _json.dumps(obj)
    finally:
        _json.USE_ORJSON = True
    return fast, slow


@needs_orjson
@pytest.mark.parametrize("value", CORPUS, ids=repr)
def test_both_paths_produce_identical_bytes(value: Any) -> None:
    fast, slow = both(value)
    assert fast == slow
    json.loads(fast)  # And the output is valid JSON.


@needs_orjson
def test_random_floats_identical() -> None:
    rng = random.Random(1234)
    values = [rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 308) for _ in range(3000)]
    values += [rng.random() * 10.0 ** rng.randint(-8, 20) for _ in range(3000)]
    fast, slow = both(values)
    assert fast == slow
    assert [float(v) for v in json.loads(fast)] == values


def test_float_formatting() -> None:
    assert (
        _json.dumps([1e-7, 1e16, 0.1, -0.0, 1e-5, 100.0]) == b"[1e-7,1e+16,0.1,-0.0,0.00001,100.0]"
    )


def test_output_is_compact_utf8() -> None:
    assert _json.dumps({"a": [1, 2], "é": "日本"}) == '{"a":[1,2],"é":"日本"}'.encode()


def test_chosen_encodings() -> None:
    assert _json.dumps(decimal.Decimal("1.10")) == b'"1.10"'
    assert _json.dumps(Point(1, 2.0)) == b'{"x":1,"y":2.0,"tags":[]}'
    assert _json.dumps(Color.RED) == b'"red"'
    assert _json.dumps(datetime.datetime(2020, 1, 1, tzinfo=UTC)) == b'"2020-01-01T00:00:00+00:00"'
    assert _json.dumps({1: 2, None: 3}) == b'{"1":2,"null":3}'
    assert _json.dumps(float("nan")) == b"null"
    assert _json.dumps(2**70) == str(2**70).encode()


@pytest.mark.parametrize("use_orjson", PATHS)
@pytest.mark.parametrize(
    ("value", "type_name"),
    [({1, 2}, "set"), (b"raw", "bytes"), ([object()], "object"), ({"a": frozenset()}, "frozenset")],
)
def test_unserialisable_type_raises_type_error(
    monkeypatch: pytest.MonkeyPatch, use_orjson: bool, value: Any, type_name: str
) -> None:
    monkeypatch.setattr(_json, "USE_ORJSON", use_orjson)
    with pytest.raises(TypeError, match=rf"Object of type '{type_name}' is not JSON serializable"):
        _json.dumps(value)


@pytest.mark.parametrize("use_orjson", PATHS)
def test_bad_key_raises_type_error(monkeypatch: pytest.MonkeyPatch, use_orjson: bool) -> None:
    monkeypatch.setattr(_json, "USE_ORJSON", use_orjson)
    with pytest.raises(TypeError, match=r"Dict key \(1, 2\) of type 'tuple'"):
        _json.dumps({(1, 2): "x"})


@pytest.mark.parametrize("use_orjson", PATHS)
def test_lone_surrogate_raises_type_error(
    monkeypatch: pytest.MonkeyPatch, use_orjson: bool
) -> None:
    monkeypatch.setattr(_json, "USE_ORJSON", use_orjson)
    with pytest.raises(TypeError, match="lone surrogate"):
        _json.dumps(["ok", "\ud800"])


@pytest.mark.parametrize("use_orjson", PATHS)
def test_depth_limit_is_the_same(monkeypatch: pytest.MonkeyPatch, use_orjson: bool) -> None:
    monkeypatch.setattr(_json, "USE_ORJSON", use_orjson)

    def nest(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels):
            value = [value]
        return value

    assert _json.dumps(nest(254)).startswith(b"[[[")
    with pytest.raises(TypeError, match="nested deeper than 254"):
        _json.dumps(nest(255))
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(TypeError, match="reference cycles"):
        _json.dumps(cycle)


VALID_DOCUMENTS = [
    b"1",
    b"-0",
    b"1.5e-7",
    b"1E2",
    b'"\\ud83d\\ude00 \\u00e9 \\n"',
    b' {"a": [1, 2.5, null, true, false, "x"]}\n',
    '{"ü": "日本"}'.encode(),
    b"18446744073709551615",
    b"18446744073709551616",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b'{"a": 1, "a": 2}',
]

INVALID_DOCUMENTS = [
    b"",
    b"NaN",
    b"[Infinity]",
    b"-Infinity",
    b"1e400",
    b"\xef\xbb\xbf1",
    b"\xff",
    b'"\xc3"',
    b"[1,]",
    b"{'a': 1}",
    b"[1] x",
    '"é"'.encode("utf-16"),
]


@needs_orjson
@pytest.mark.parametrize("document", VALID_DOCUMENTS, ids=repr)
def test_loads_both_paths_agree(document: bytes) -> None:
    fast = _json.loads(document)
    _json.USE_ORJSON = False
    try:
        slow = _json.loads(document)
        slow_text = _json.loads(document.decode())
    finally:
        _json.USE_ORJSON = True
    assert fast == slow == slow_text
    assert type(fast) is type(slow)


@pytest.mark.parametrize("use_orjson", PATHS)
@pytest.mark.parametrize("document", INVALID_DOCUMENTS, ids=repr)
def test_loads_rejects_invalid(
    monkeypatch: pytest.MonkeyPatch, use_orjson: bool, document: bytes
) -> None:
    monkeypatch.setattr(_json, "USE_ORJSON", use_orjson)
    with pytest.raises(json.JSONDecodeError):
        _json.loads(document)


def test_loads_accepts_str_bytearray_memoryview(stdlib_path: None) -> None:
    assert _json.loads('{"a": 1}') == {"a": 1}
    assert _json.loads(bytearray(b"[1]")) == [1]
    assert _json.loads(memoryview(b"[2]")) == [2]


def test_round_trip(stdlib_path: None) -> None:
    data = {"a": [1, 2.5, None, True, "ü"], "b": {"c": -0.0}}
    assert _json.loads(_json.dumps(data)) == data


def test_stdlib_path_formats_like_orjson(stdlib_path: None) -> None:
    assert not _json.USE_ORJSON
    assert _json.dumps([1e-7, 1e16, 1.5e-5, -1e-5, 1e-4, 5e-324]) == (
        b"[1e-7,1e+16,0.000015,-0.00001,0.0001,5e-324]"
    )
    assert _json.dumps({"é": [None, True, (1, 2)]}) == '{"é":[null,true,[1,2]]}'.encode()
