"""oanix.values: the parsers against references written here independently, round trips,
and the refusal of junk (always InvalidArgument / InvalidContent, never another error)."""

from __future__ import annotations

import contextlib
import json
import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oanix.errors import InvalidArgument, InvalidContent
from oanix.values import (
    MAX_COUNT,
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    MAX_SECONDS,
    MAX_SIZE,
    check_unicode,
    copy_json,
    dumps_compact,
    dumps_line,
    dumps_pretty,
    load_json,
    parse_count,
    parse_duration,
    parse_size,
)

# -- the reference: a number spelled as parts, valued with Decimal ------------------------------

SIZE_FACTORS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
TIME_FACTORS = {"": Fraction(1), "s": Fraction(1), "ms": Fraction(1, 1000),
                "us": Fraction(1, 1_000_000), "m": Fraction(60), "h": Fraction(3600),
                "d": Fraction(86400)}


def exact(int_part: str, frac: str | None, exp: int | None) -> Fraction:
    """The exact value of ``int_part[.frac][e exp]`` (digits only)."""
    text = int_part + (f".{frac}" if frac is not None else "") + (
        f"e{exp}" if exp is not None else "")
    with localcontext() as ctx:
        ctx.prec = 400
        return Fraction(Decimal(text))


def with_underscores(digits: str, cuts: list[int]) -> str:
    """``digits`` with an underscore before each position in ``cuts`` (inside only)."""
    out = ""
    for i, ch in enumerate(digits):
        if i and i in cuts:
            out += "_"
        out += ch
    return out


digits = st.text("0123456789", min_size=1, max_size=12)
spelled = st.tuples(
    digits, st.none() | digits, st.none() | st.integers(-12, 12),
    st.lists(st.integers(1, 11), max_size=3), st.booleans())


def render(parts: tuple[str, str | None, int | None, list[int], bool]) -> str:
    int_part, frac, exp, cuts, upper_e = parts
    text = with_underscores(int_part, cuts)
    if frac is not None:
        text += "." + frac
    if exp is not None:
        text += ("E" if upper_e else "e") + str(exp)
    return text


@settings(max_examples=300, deadline=None)
@given(spelled, st.sampled_from(sorted(SIZE_FACTORS)), st.sampled_from(["", "b", "ib"]),
       st.booleans(), st.sampled_from(["", " "]))
def test_size_matches_the_reference(parts: Any, unit: str, tail: str, upper: bool,
                                    space: str) -> None:
    int_part, frac, exp, _cuts, _ = parts
    if tail == "ib":
        assume(unit != "")  # "5iB" is not a spelling
    suffix = unit + tail
    text = render(parts) + space + (suffix.upper() if upper else suffix)
    value = exact(int_part, frac, exp) * SIZE_FACTORS[unit]
    expected = math.floor(value)
    if expected > MAX_SIZE:
        with pytest.raises(InvalidArgument, match=r"limit\.memory"):
            parse_size(text, "limit.memory")
    else:
        assert parse_size(text, "limit.memory") == expected


@settings(max_examples=300, deadline=None)
@given(spelled, st.sampled_from(sorted(TIME_FACTORS)))
def test_duration_matches_the_reference(parts: Any, unit: str) -> None:
    int_part, frac, exp, _cuts, _ = parts
    text = render(parts) + unit
    value = exact(int_part, frac, exp) * TIME_FACTORS[unit]
    if value == 0 or value > MAX_SECONDS:
        with pytest.raises(InvalidArgument, match="timeout"):
            parse_duration(text, "timeout")
    else:
        assert parse_duration(text, "timeout") == float(value)


@settings(max_examples=300, deadline=None)
@given(spelled)
def test_count_matches_the_reference(parts: Any) -> None:
    int_part, frac, exp, _cuts, _ = parts
    text = render(parts)
    value = exact(int_part, frac, exp)
    if value.denominator != 1 or value > MAX_COUNT:
        with pytest.raises(InvalidArgument, match="fuel"):
            parse_count(text, "fuel")
    else:
        assert parse_count(text, "fuel") == value


# -- round trips ---------------------------------------------------------------------------------

@settings(deadline=None)  # a loaded machine is not a failure
@given(st.integers(0, MAX_SIZE))
def test_size_and_count_round_trip(n: int) -> None:
    for parse in (parse_size, parse_count):
        assert parse(n, "x") == n
        assert parse(str(n), "x") == n
        assert parse(f"{n:_}", "x") == n


@settings(deadline=None)  # a loaded machine is not a failure
@given(st.integers(0, 2**20), st.sampled_from(["k", "M", "G", "T"]),
       st.sampled_from(["", "B", "iB"]))
def test_size_units_round_trip(n: int, unit: str, tail: str) -> None:
    factor = SIZE_FACTORS[unit.lower()]
    assert parse_size(f"{n}{unit}{tail}", "x") == n * factor
    assert parse_size(f"{n}{unit.lower()}{tail.lower()}", "x") == n * factor


@settings(deadline=None)  # a loaded machine is not a failure
@given(st.floats(min_value=1e-6, max_value=MAX_SECONDS))
def test_duration_round_trips_floats(seconds: float) -> None:
    assert parse_duration(seconds, "t") == seconds
    assert parse_duration(repr(seconds), "t") == seconds


# -- junk ----------------------------------------------------------------------------------------

JUNK = ["", " ", "-1", "-0.5", "nan", "NaN", "inf", "-inf", "infinity", "1e308", "1e999999999",
        "2**70", "1.5.5", "1__0", "_1", "1_", "1._5", "--1", "+1", "1 k k", "k", "1x",
        "0x10", "1e", "1E", "1eb", "e5", ".", "1,000", "١٢٣", "1\x00", "9" * 80, "1kk", "1KiBB"]


@pytest.mark.parametrize("text", JUNK)
def test_junk_is_refused_naming_the_field(text: str) -> None:
    for parse in (parse_size, parse_count, parse_duration):
        with pytest.raises(InvalidArgument, match=r"^limits\.x: "):
            parse(text, "limits.x")


@pytest.mark.parametrize("value", [True, False, None, -1, 2**63, 2**70, float("nan"),
                                   float("inf"), -1.0, 1e300, [1], b"1"])
def test_bad_python_values_are_refused(value: object) -> None:
    for parse in (parse_size, parse_count, parse_duration):
        with pytest.raises(InvalidArgument, match=r"^v: "):
            parse(value, "v")


@settings(deadline=None)  # a loaded machine is not a failure
@given(st.text(max_size=30) | st.binary(max_size=10) | st.floats() | st.integers())
def test_anything_is_a_value_or_invalid_argument(value: object) -> None:
    for parse in (parse_size, parse_count, parse_duration):
        with contextlib.suppress(InvalidArgument):
            parse(value, "v")


def test_bounds_and_spellings() -> None:
    assert parse_size("1.5G", "x") == 3 << 29
    assert parse_size("256MiB", "x") == parse_size("256M", "x") == 256 << 20
    assert parse_size("64k", "x") == 65536 and parse_size("1_000_000", "x") == 10**6
    assert parse_size("0", "x") == 0
    with pytest.raises(InvalidArgument, match="out of range"):
        parse_size("0", "x", minimum=1)
    with pytest.raises(InvalidArgument, match="out of range"):
        parse_size("8192P", "x")  # 2**63 > 2**63 - 1
    assert parse_size(MAX_SIZE, "x") == MAX_SIZE
    assert parse_duration("500ms", "t") == 0.5 and parse_duration("1m", "t") == 60
    assert parse_duration("1.5h", "t") == 5400 and parse_duration("2.5", "t") == 2.5
    assert parse_duration("0", "t", allow_zero=True) == 0
    assert parse_count("1e6", "n") == 10**6 and parse_count(1e9, "n") == 10**9
    with pytest.raises(InvalidArgument, match="n: "):
        parse_count("1.5", "n")


# -- JSON ----------------------------------------------------------------------------------------

def reference_depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max(map(reference_depth, v.values()), default=0)
    if isinstance(v, list):
        return 1 + max(map(reference_depth, v), default=0)
    return 0


def reference_ok(v: Any) -> bool:
    """Whether a parsed value is one load_json keeps: every str (keys too) UTF-8 storable,
    every int of at most MAX_INT_DIGITS digits, every float finite."""
    if isinstance(v, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in v)
    if isinstance(v, bool) or v is None:
        return True
    if isinstance(v, int):
        return len(str(abs(v))) <= MAX_INT_DIGITS
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(map(reference_ok, v))
    return all(reference_ok(k) and reference_ok(x) for k, x in v.items())


texts = st.text(max_size=6) | st.sampled_from(["\ud800", "a\udfffb", "\U0001f600", "é"])
scalars = (st.none() | st.booleans() | st.integers() | st.integers(10**120, 10**140)
           | st.floats(allow_nan=False, allow_infinity=False) | texts)
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3),
    max_leaves=12)


def nest(v: Any, n: int) -> Any:
    for _ in range(n):
        v = [v]
    return v


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(0, 70), st.booleans())
def test_load_json_matches_the_reference(value: Any, extra_depth: int, ascii_: bool) -> None:
    value = nest(value, extra_depth)
    text = json.dumps(value, ensure_ascii=ascii_)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # raw surrogates: not UTF-8 at all
        with pytest.raises(InvalidContent):
            load_json(text, "/f")
        return
    if reference_ok(value) and reference_depth(value) <= MAX_JSON_DEPTH:
        assert load_json(data, "/f") == json.loads(text)
        assert load_json(text, "/f") == json.loads(text)
    else:
        with pytest.raises(InvalidContent) as exc:
            load_json(data, "/f")
        assert exc.value.path == "/f" and exc.value.strerror.startswith("not valid JSON")


@settings(deadline=None)  # a loaded machine is not a failure
@given(st.binary(max_size=80) | st.text(max_size=80))
def test_any_input_is_a_value_or_invalid_content(data: bytes | str) -> None:
    try:
        load_json(data, "/f")
    except InvalidContent as e:
        assert e.path == "/f"


@settings(deadline=None)  # a loaded machine is not a failure
@given(json_values)
def test_dumps_never_fail_and_round_trip(value: Any) -> None:
    for out in (dumps_line(value), dumps_pretty(value), dumps_pretty(value, indent=1),
                dumps_compact(value).encode("utf-8")):
        out.decode("utf-8")  # always valid UTF-8
        assert json.loads(out) == value
        if reference_ok(value):
            assert load_json(out, "/f") == value


@pytest.mark.parametrize("data, why", [
    (b"[" * 100_000, "nested deeper"),
    (b'{"a":' * 50_000, "nested deeper"),
    (b"[" * 65 + b"]" * 65, "nested deeper"),
    (b"1" * 5000, "digits"),
    (b'{"n": -' + b"9" * 200 + b"}", "digits"),
    (b"0." + b"1" * 5000, "characters"),
    (b"1e999", "does not fit"),
    (b"-1e999", "does not fit"),
    (b"NaN", "NaN"),
    (b"[Infinity]", "Infinity"),
    (b'"\\ud800"', "surrogate"),
    (b'{"\\udc00": 1}', "surrogate"),
    (b"\xff", "not UTF-8"),
    (b"\xed\xa0\x80", "not UTF-8"),  # a surrogate encoded as UTF-8 bytes
    (b"", "Expecting value"),
    (b"[1] [2]", "Extra data"),
])
def test_json_attacks_are_typed_errors(data: bytes, why: str) -> None:
    with pytest.raises(InvalidContent, match=why) as exc:
        load_json(data, "/cap/x/request")
    assert exc.value.path == "/cap/x/request"


def test_json_bounds_are_parameters() -> None:
    assert load_json(b"[" * 64 + b"]" * 64, "f") is not None
    assert load_json(b"[[1]]", "f", max_depth=2) == [[1]]
    with pytest.raises(InvalidContent, match="nested deeper than 1"):
        load_json(b"[[1]]", "f", max_depth=1)
    with pytest.raises(InvalidContent, match="at most 3"):
        load_json(b"1234", "f", max_bytes=3)
    assert load_json(b'"\\ud83d\\ude00"', "f") == "\U0001f600"  # a pair is one character


def test_copy_json_keeps_host_surrogates_and_refuses_non_json() -> None:
    assert copy_json({"k": "\udfff"}, "input") == {"k": "\udfff"}
    for bad in ({1: 2}, (1,), {"x": float("nan")}, {"x": object()}):
        with pytest.raises(InvalidArgument, match=r"^input "):
            copy_json(bad, "input")


def test_check_unicode() -> None:
    assert check_unicode("é\U0001f600", "f") == "é\U0001f600"
    with pytest.raises(InvalidArgument, match="content: a lone surrogate"):
        check_unicode("a\ud800", "content")
