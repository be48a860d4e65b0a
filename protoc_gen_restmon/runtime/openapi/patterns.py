"""Regular expressions (ECMA-262 subset, anchored) for the strings the codec reads and writes.

Each pattern says what `runtime/jsoncodec/scalars.py` accepts (the request view) or what
`runtime/jsoncodec/write.py` writes (the response view); where a pattern can only approximate,
it is the stricter side and docs/openapi.md says so.
"""

from __future__ import annotations

from typing import Final


def _upto(limit: int) -> str:
    """Decimal numerals without leading zeros whose value is at most `limit` (>= 0)."""
    digits = str(limit)
    options = ["0"]
    if len(digits) > 1:  # fewer digits than `limit`
        options.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}" if len(digits) > 2 else "[1-9]")
    for i, digit in enumerate(digits):  # same length: a smaller digit at position i
        low = 1 if i == 0 else 0
        if int(digit) > low:
            top = int(digit) - 1
            smaller = str(low) if top == low else f"[{low}-{top}]"
            rest = len(digits) - i - 1
            options.append(digits[:i] + smaller + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(digits)
    return "(?:" + "|".join(dict.fromkeys(options)) + ")"


def integer_range(low: int, high: int, *, lenient: bool) -> str:
    """Integers in [low, high] as text: canonical (`-12`, `0`), or as the parser reads them when
    `lenient` (leading zeros, `-0`). Exponent forms (`1e3`), also accepted, are not described."""
    zeros = "0*" if lenient else ""
    alternatives = [f"{zeros}{_upto(high)}"] if high >= 0 else []
    if low < 0:
        alternatives.append(f"-{zeros}{_upto(-low)}")
    if lenient and low >= 0:
        alternatives.append("-0+")
    return "^(?:" + "|".join(alternatives) + ")$"


def enum_numbers(numbers: list[int]) -> str:
    """The text of exactly these numbers, as the parser reads them (leading zeros, `-0`)."""
    forms = []
    for number in sorted(set(numbers)):
        if number == 0:
            forms.append("-?0+")
        else:
            forms.append(f"{'-' if number < 0 else ''}0*{abs(number)}")
    return "^(?:" + "|".join(forms) + ")$"


# A decimal number as text: `_DECIMAL` of scalars.py with bounded digits, so that no value the
# pattern allows overflows (a double beyond 1.8e308, a float beyond 3.4e38, is refused).
def decimal(int_digits: int, exponent_digits: str) -> str:
    mantissa = rf"(?:[0-9]{{1,{int_digits}}}\.?[0-9]*|\.[0-9]+)"
    return rf"-?{mantissa}(?:[eE][+-]?{exponent_digits})?"


DOUBLE_TEXT: Final = "^(?:" + decimal(200, "[0-9]{1,2}") + "|NaN|-?Infinity)$"
FLOAT_TEXT: Final = "^(?:" + decimal(30, "[0-7]") + "|NaN|-?Infinity)$"
SPECIAL_FLOATS: Final = ("NaN", "Infinity", "-Infinity")

# Standard or URL-safe base64, padded or not: scalars._bytes_parser.
_B64: Final = "[A-Za-z0-9+/_-]"
BASE64_READ: Final = f"^(?:{_B64}{{4}})*(?:{_B64}{{2}}(?:==)?|{_B64}{{3}}=?)?$"
BASE64_WRITE: Final = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

# --- Timestamp: RFC 3339 as scalars.parse_timestamp reads it -------------------------------------

_YEAR: Final = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_INNER_YEAR: Final = (  # 0002..9998: any offset keeps the instant inside 0001..9999
    "(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
)
_LEAP_YEAR: Final = (
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
)
_MONTH_DAY: Final = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_TIME: Final = "[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
_OFFSET: Final = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_UTC: Final = "(?:[Zz]|[+-]00:00)"


def _dates(year: str, leap: str) -> str:
    return f"(?:{year}-{_MONTH_DAY}|{leap}-02-29)"


TIMESTAMP_READ: Final = (
    f"^(?:{_dates(_INNER_YEAR, _LEAP_YEAR)}{_TIME}{_OFFSET}"
    f"|{_dates(_YEAR, _LEAP_YEAR)}{_TIME}{_UTC})$"
)
TIMESTAMP_WRITE: Final = (
    f"^{_dates(_YEAR, _LEAP_YEAR)}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    "(?:\\.[0-9]{3}|\\.[0-9]{6}|\\.[0-9]{9})?Z$"
)

# --- Duration, FieldMask ------------------------------------------------------------------------

_DURATION_SECONDS: Final = 315576000000  # options.DURATION_MAX
DURATION_READ: Final = f"^-?0*{_upto(_DURATION_SECONDS)}(?:\\.[0-9]{{1,9}})?s$"
DURATION_WRITE: Final = (
    f"^-?{_upto(_DURATION_SECONDS)}(?:\\.[0-9]{{3}}|\\.[0-9]{{6}}|\\.[0-9]{{9}})?s$"
)

_MASK_PATH: Final = "[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)*"
FIELD_MASK_READ: Final = f"^(?:{_MASK_PATH}(?:,{_MASK_PATH})*)?$"
_CAMEL_PATH: Final = "[a-z0-9][A-Za-z0-9]*(?:\\.[a-z0-9][A-Za-z0-9]*)*"
FIELD_MASK_WRITE: Final = f"^(?:{_CAMEL_PATH}(?:,{_CAMEL_PATH})*)?$"

ONE_SEGMENT: Final = "^[^/]+$"
