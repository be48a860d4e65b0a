"""One value, two sources: a query parameter and a JSON body read it alike (one decoder).

`GET /v1/sink` takes every field of `Sink` from the query, `POST /v1/sink` (body "*") from the
body. Each example draws a field, a text (valid or not) and the JSON value a client sends for the
same text, and asserts the same outcome: both accept and build the same message, or both refuse
with a 400 naming the same field path, and, where the body carries the text itself as a JSON
string, for the same reason. The JSON side differs only where the proto3 JSON mapping makes it
differ: a bool is the literal `true` (text "true"); a number may be sent as a JSON number.

The second property holds both to json_format, the oracle: where both accept and json_format
accepts too, the three messages are the same; where json_format refuses, the value is one of the
forms the mapping allows and json_format does not (`JSON_FORMAT_REFUSES` below).
"""

from __future__ import annotations

import base64
import json
import math
import re
import urllib.parse
from typing import Any, NamedTuple

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.scalars import FieldValueError, integer_of
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.transcode_fixtures import Api, Case, transcode

SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

INT_KINDS = {
    "f_int32": 32, "f_sint32": 32, "f_sfixed32": 32, "w_int32": 32, "f_uint32": -32,
    "f_fixed32": -32, "w_uint32": -32, "f_int64": 64, "f_sint64": 64, "f_sfixed64": 64,
    "w_int64": 64, "f_uint64": -64, "f_fixed64": -64, "w_uint64": -64,
}  # fmt: skip
FLOAT_FIELDS = ("f_double", "f_float", "w_double", "w_float")
BOOL_FIELDS = ("f_bool", "w_bool")
STRING_FIELDS = ("f_string", "w_string")
BYTES_FIELDS = ("f_bytes", "w_bytes")
COLORS = ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_GREEN"]
STRICT_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
STRICT_JSON_FRACTION = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


class Drawn(NamedTuple):
    """A field (its proto name, the name sent), its query text, the body's JSON value for it."""

    name: str
    key: str
    text: str
    json_value: Any
    same_problem: bool  # the body carries the text itself: both refuse for the same reason
    map_key: str | None = None  # a map entry: `by_int64[12]=x`, {"by_int64": {"12": "x"}}

    @property
    def path(self) -> tuple[str, ...]:
        """The field path both refusals must name."""
        return (self.key,) if self.map_key is None else (self.key, f"[{self.map_key}]")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# --- Texts, valid and not ------------------------------------------------------------------------

NUMBER_NOISE = st.text(alphabet="0123456789-+.eE _x", max_size=8)
ODD_NUMBERS = st.sampled_from(
    ["", "+1", " 1", "1 ", "1_000", "0x10", "\u0661", "1e", "e3", ".", "-", "1.5", "1e-3", "1.",
     ".5", "-0", "007", "1e3", "1.0", "1E2", "2.50e1", "NaN", "nan", "Infinity", "-Infinity",
     "inf", "1e999", "-1e999", "3.5e38", "3.4028235e38", "5e-324", "true", "null", "9" * 40]
)  # fmt: skip


def integer_texts(bits: int) -> st.SearchStrategy[str]:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if bits > 0 else (0, 2**-bits - 1)
    near = st.integers(low - 2, high + 2) | st.sampled_from([low - 1, low, high, high + 1, 0])
    spelled = near.flatmap(
        lambda n: st.sampled_from(
            [str(n), f"{n}.0", f"{n}e0", f"{n * 10}e-1", f"0{n}" if n >= 0 else f"-0{-n}"]
        )
    )
    return spelled | ODD_NUMBERS | NUMBER_NOISE


FLOAT_TEXTS = (
    st.floats().map(lambda x: "NaN" if math.isnan(x) else repr(x).replace("inf", "Infinity"))
    | st.floats(width=32).map(repr)
    | ODD_NUMBERS
    | NUMBER_NOISE
)
BOOL_TEXTS = st.sampled_from(["true", "false", "True", "FALSE", "1", "0", "", "yes", " true"])
STRING_TEXTS = st.text(st.characters(codec="utf-8"), max_size=12)
BASE64_NOISE = st.text(alphabet="ABCab012+/-_= ", max_size=9)


@st.composite
def base64_texts(draw: st.DrawFn) -> str:
    raw = draw(st.binary(max_size=9))
    encoded = draw(st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]))(raw).decode()
    encoded = draw(st.sampled_from([encoded, encoded.rstrip("=")]))
    return encoded.replace("+", draw(st.sampled_from(["+", " "])))  # "+" left unencoded


ENUM_TEXTS = (
    st.sampled_from([*COLORS, "COLOR_BLUE", "color_red", "COLOR_RED ", ""])
    | st.integers(-(2**31) - 1, 2**31).map(str)
    | ODD_NUMBERS
)


@st.composite
def timestamp_texts(draw: st.DrawFn) -> str:
    """RFC 3339 and near misses: every component just in or out of range, any case, offsets."""

    def number(width: int, low: int, high: int) -> str:
        return str(draw(st.integers(low, high))).zfill(width)

    date = f"{number(4, 0, 9999)}-{number(2, 0, 13)}-{number(2, 0, 32)}"
    time = f"{number(2, 0, 24)}:{number(2, 0, 60)}:{number(2, 0, 60)}"
    fraction = draw(st.sampled_from(["", "."]))
    if fraction:
        fraction += draw(st.text(alphabet="0123456789", min_size=0, max_size=10))
    offset = draw(st.sampled_from(["Z", "z", "", "+", "-", " "]))  # " ": an unencoded "+"
    if offset in "+- ":
        offset += f"{number(2, 0, 25)}:{number(2, 0, 60)}"
    return f"{date}{draw(st.sampled_from('TtT '))}{time}{fraction}{offset}"


TIMESTAMP_TEXTS = (
    timestamp_texts()
    | st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "1970-01-01T00:00:00Z",
            "2024-02-29t12:00:00z",
            "yesterday",
        ]
    )
    | st.text(alphabet="0123456789-:TZ.+", max_size=12)
)


@st.composite
def duration_texts(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "-", "+"]))
    seconds = draw(st.integers(0, 10**12) | st.sampled_from([315576000000, 315576000001]))
    fraction = draw(st.sampled_from(["", "."]))
    if fraction:
        fraction += draw(st.text(alphabet="0123456789", max_size=10))
    return f"{sign}{seconds}{fraction}{draw(st.sampled_from(['s', 's', '', 'S', 'ms']))}"


DURATION_TEXTS = duration_texts() | st.text(alphabet="0123456789.-s", max_size=8)
MASK_SEGMENTS = st.sampled_from(["a", "fooBar", "foo_bar", "x1", "1x", "", "A", "bAZ", "é"])
MASK_TEXTS = st.lists(
    st.lists(MASK_SEGMENTS, min_size=1, max_size=3).map(".".join), max_size=3
).map(",".join)

TEXTS: dict[str, st.SearchStrategy[str]] = {
    **{name: integer_texts(bits) for name, bits in INT_KINDS.items()},
    **{name: FLOAT_TEXTS for name in FLOAT_FIELDS},
    **{name: BOOL_TEXTS for name in BOOL_FIELDS},
    **{name: STRING_TEXTS for name in STRING_FIELDS},
    **{name: base64_texts() | BASE64_NOISE for name in BYTES_FIELDS},
    "color": ENUM_TEXTS,
    "at": TIMESTAMP_TEXTS,
    "wait": DURATION_TEXTS,
    "mask": MASK_TEXTS,
}


@st.composite
def drawn_values(draw: st.DrawFn) -> Drawn:
    """A singular field of Sink and a text for it."""
    name = draw(st.sampled_from(sorted(TEXTS)))
    key = draw(st.sampled_from([name, camel(name)]))
    text = draw(TEXTS[name])
    return Drawn(name, key, text, *json_counterpart(draw, name, text))


def json_counterpart(draw: st.DrawFn, kind: str, text: str) -> tuple[Any, bool]:
    """What the client puts in the body for `text` (a value of a field like `kind`), and whether
    a refusal must give the same problem (the body carries the text itself)."""
    if kind in BOOL_FIELDS:
        return (text == "true" if text in ("true", "false") else text), False
    if kind in (*INT_KINDS, "color") and STRICT_JSON_INTEGER.match(text) and draw(st.booleans()):
        return json.loads(text), False  # the JSON number 12
    if (
        kind in FLOAT_FIELDS
        and STRICT_JSON_FRACTION.match(text)
        and not STRICT_JSON_INTEGER.match(text)  # JSON -0 reads as the int 0: no sign
        and math.isfinite(json.loads(text))  # 1e999 reads as inf, written back as Infinity
        and draw(st.booleans())
    ):
        return json.loads(text), False  # the JSON number 1.5
    # In a URL, a space in base64 or in an offset is the "+" the client did not encode.
    plus = text.replace(" ", "+") if kind in BYTES_FIELDS else text
    if kind == "at":
        plus = text[:-6] + text[-6:].replace(" ", "+")  # only the offset's space
    return plus, plus == text  # messages quote what was sent


# Map fields: (the strategy of their keys, the kind of field their values are like).
MAPS: dict[str, tuple[st.SearchStrategy[str], str]] = {
    "by_int64": (integer_texts(64), "f_string"),
    "by_bool": (BOOL_TEXTS, "f_string"),
    "by_uint32": (integer_texts(-32), "color"),
    "at_by_name": (STRING_TEXTS, "at"),
}


@st.composite
def drawn_map_entries(draw: st.DrawFn) -> Drawn:
    """One entry of a map field of Sink: any key text, a value text like its value type's."""
    name = draw(st.sampled_from(sorted(MAPS)))
    keys, kind = MAPS[name]
    text = draw(TEXTS[kind])
    counterpart = json_counterpart(draw, kind, text)
    return Drawn(name, draw(st.sampled_from([name, camel(name)])), text, *counterpart, draw(keys))


# --- The two requests ----------------------------------------------------------------------------


def by_query(api: Api, drawn: Drawn) -> Message | FieldValueError:
    key = drawn.key if drawn.map_key is None else f"{drawn.key}[{drawn.map_key}]"
    query = f"{urllib.parse.quote(key, safe='')}={urllib.parse.quote(drawn.text, safe='')}"
    return outcome(api, Case("Query", (), query))


def by_body(api: Api, drawn: Drawn) -> Message | FieldValueError:
    value = drawn.json_value if drawn.map_key is None else {drawn.map_key: drawn.json_value}
    body = json.dumps({drawn.key: value}, ensure_ascii=False).encode()
    return outcome(api, Case("PostSink", (), body=body, content_type="application/json"))


def outcome(api: Api, case: Case) -> Message | FieldValueError:
    try:
        return transcode(api, case)
    except FieldValueError as error:
        assert (error.code, error.http_status) == (Code.INVALID_ARGUMENT, 400), error.message
        return error
    except RpcError as error:  # any other refusal is not about the value: a failure here
        raise AssertionError(f"{case}: {error.message}") from error


def wire(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


@SETTINGS
@given(drawn=drawn_values() | drawn_map_entries())
def test_query_and_body_read_a_value_alike(api: Api, drawn: Drawn) -> None:
    query, body = by_query(api, drawn), by_body(api, drawn)
    if isinstance(query, Message) and isinstance(body, Message):
        assert wire(query) == wire(body), (query, body)
        return
    assert isinstance(query, FieldValueError), f"only the body refused: {body}"
    assert isinstance(body, FieldValueError), f"only the query refused: {query}"
    assert (query.source, body.source) == ("query parameter", "body field")
    assert query.path == body.path == drawn.path
    assert (
        query.message.removeprefix("query parameter") == body.message.removeprefix("body field")
        or not drawn.same_problem
    ), (query.message, body.message)


# --- json_format, the oracle ---------------------------------------------------------------------

LOWER_CASE_T_OR_Z = re.compile(r"[0-9]t|[0-9]z\Z")


def json_format_refuses(drawn: Drawn) -> str:
    """Why json_format may refuse a value the mapping allows; "" when it must accept it."""
    value = drawn.json_value
    if isinstance(value, str) and LOWER_CASE_T_OR_Z.search(value):
        return "RFC 3339 allows a lower-case t and z; json_format's strptime does not"
    if (
        drawn.name in INT_KINDS
        and isinstance(value, str)
        and not re.fullmatch(r"-?[0-9]+", value)
        and abs(integer_of(value) or 0) > 2**53
    ):
        return "an integer written 1e20 or 18446744073709551615.0: json_format reads a double"
    if (
        drawn.name == "color"
        and isinstance(value, str)
        and not re.fullmatch(r"-?[0-9]+", value)
        and integer_of(value) is not None
    ):
        return "an enum number as a string written 1e3 or 2.0: json_format's int() reads digits"
    if drawn.name == "mask" and "_" in str(value):
        return "a FieldMask path by proto names: json_format takes only lowerCamelCase"
    if drawn.name in ("f_float", "w_float"):
        number = float(value) if isinstance(value, (int, float)) else None
        if number is None and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is not None and 3.4028234663852886e38 < abs(number) < 3.4028235677973366e38:
            return "a float that rounds to FLT_MAX: json_format refuses all above FLT_MAX"
    return ""


@SETTINGS
@given(drawn=drawn_values())
def test_accepted_values_are_json_formats(api: Api, drawn: Drawn) -> None:
    body = by_body(api, drawn)
    if not isinstance(body, Message):
        return
    cls = type(body)
    try:
        oracle = json_format.ParseDict({drawn.key: drawn.json_value}, cls())
    except Exception as error:  # json_format raises ParseError and others
        assert json_format_refuses(drawn), f"json_format refused {drawn}: {error}"
        return
    assert wire(body) == wire(oracle), (drawn, body, oracle)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("2024-01-01t00:00:00z", "2024-01-01T00:00:00Z", id="timestamp-lower-case"),
        pytest.param("2024-01-01T01:00:00 01:00", "2024-01-01T00:00:00Z", id="offset-plus-space"),
    ],
)
def test_lower_case_timestamp_from_both_sources(api: Api, text: str, value: str) -> None:
    """The disagreement this decoder ended: the query took lower case, the body refused it."""
    drawn = Drawn("at", "at", text, text.replace(" ", "+"), same_problem=True)
    query, body = by_query(api, drawn), by_body(api, drawn)
    assert isinstance(query, Message) and isinstance(body, Message)
    wanted = json_format.ParseDict({"at": value}, type(query)())
    assert wire(query) == wire(body) == wire(wanted)
