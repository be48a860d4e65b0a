"""Python source text for plain data (frozen dataclasses, tuples, enums, scalars), black-formatted.

Generated modules hold data built from `runtime.specs` types; this module prints such a value as
the expression that rebuilds it. The layout is the one black settles on (black leaves it as it is),
so the plugin never needs to run black over its own modules:

- an expression that fits on its line (88 columns) stays on one line, without a trailing comma;
- otherwise it is exploded, one element per line, each followed by a comma (black's "magic
  trailing comma" then keeps it exploded).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from enum import Enum
from typing import Any

from black.strings import str_width  # black's own measure: wide characters count twice

LINE_LENGTH = 88
INDENT = "    "


def to_source(value: Any, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """`prefix + expression + suffix` at `indent` levels, as black would lay it out.

    >>> to_source(("a", 1))
    '("a", 1)'
    """
    pad = INDENT * indent
    flat = _flat(value)
    if flat is not None and str_width(pad + prefix + flat + suffix) <= LINE_LENGTH:
        return pad + prefix + flat + suffix
    opening, items, closing = _parts(value)
    if items is None:  # an atom too long for the line: black leaves it long too
        return pad + prefix + (flat or "") + suffix
    inner = "".join(
        to_source(item, indent + 1, item_prefix, ",") + "\n" for item_prefix, item in items
    )
    return f"{pad}{prefix}{opening}\n{inner}{pad}{closing}{suffix}"


def _flat(value: Any) -> str | None:
    """The one-line form, or None when the value must span lines (long strings)."""
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    opening, items, closing = _parts(value)
    assert items is not None  # every non-atom has parts
    texts = [p + f for p, f in ((p, _flat(v)) for p, v in items) if f is not None]
    if len(texts) != len(items):
        return None
    if opening == "(" and len(texts) == 1:
        return f"({texts[0]},)"
    return opening + ", ".join(texts) + closing


def _parts(value: Any) -> tuple[str, list[tuple[str, Any]] | None, str]:
    if isinstance(value, tuple):
        return "(", [("", item) for item in value], ")"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f"{f.name}=", getattr(value, f.name)) for f in dataclasses.fields(value)]
        return f"{type(value).__name__}(", fields, ")"
    return "", None, ""


def _string(text: str) -> str:
    """A string literal quoted as black quotes it: double quotes, unless single quotes need
    fewer escapes. Control and line-separator characters are escaped.
    """
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = "".join(_ESCAPES.get(c) or _escape_char(c, quote) for c in text)
    return quote + body + quote


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str, quote: str) -> str:
    if char == quote:
        return "\\" + char
    if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char == "\ufeff":
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def chunked_string(text: str, indent: int, width: int = 76) -> str:
    """A long ASCII string as implicitly concatenated literals, one chunk per line."""
    pad = INDENT * indent
    chunks = [text[i : i + width] for i in range(0, len(text), width)] or [""]
    return "\n".join(f'{pad}"{chunk}"' for chunk in chunks)
