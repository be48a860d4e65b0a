"""An OpenAPI document as text: deterministic JSON and YAML, for files and for the CLI.

Both keep the document's own key order (the builder orders it: `openapi`, `info`, `paths`, …),
so the same document always gives the same bytes, and neither depends on the platform: the YAML
comes from PyYAML's pure-Python emitter, never libyaml's (whose line breaking may differ).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml


def dump_json(document: Mapping[str, Any]) -> str:
    """UTF-8 JSON text, two-space indented, ending in a newline; NaN and infinities refused.

    >>> dump_json({"openapi": "3.1.0", "info": {"title": "é"}})
    '{\\n  "openapi": "3.1.0",\\n  "info": {\\n    "title": "é"\\n  }\\n}\\n'
    """
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


class _Dumper(yaml.SafeDumper):
    """SafeDumper without anchors: the builder may share one dict between places (a `$ref`
    object, a Status schema), and `&id001`/`*id001` aliases confuse OpenAPI tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# YAML's line breaks besides \n and \r: PyYAML folds them when it writes a plain or a
# single-quoted scalar and then reads them back as something else (`'\x85'` -> `' '`).
_UNICODE_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    """A multi-line description as a `|` block (PyYAML falls back to quotes where a block
    cannot hold the text exactly); Unicode line breaks double-quoted, as escapes."""
    if _UNICODE_BREAKS.intersection(text):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
    if "\n" in text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_str(text)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(document: Mapping[str, Any]) -> str:
    """YAML 1.1 block text that `yaml.safe_load` reads back to the same document.

    Strings YAML would read as something else (`"on"`, `"200"`, `"null"`) are quoted; long
    strings are not folded (a description stays one scalar, however long).

    >>> print(dump_yaml({"openapi": "3.1.0", "paths": {"/v1": {"get": {"x": ["200", True]}}}}))
    openapi: 3.1.0
    paths:
      /v1:
        get:
          x:
          - '200'
          - true
    <BLANKLINE>
    """
    text = yaml.dump(
        _plain(document),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=float("inf"),
    )
    return str(text)


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists: SafeDumper represents only the plain types."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
