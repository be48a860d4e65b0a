r"""Where betterproto 2.0.0b7 writes a module that does not import, and what we write instead.

`plugin.dataclasses` stays byte-identical to betterproto's own plugin wherever that plugin's
output is valid Python. Two things in real protos (googleapis) make it invalid, and each repair
here applies only where that happens, so every other module keeps betterproto's bytes:

* A message or enum that shadows a name the module imports from `typing` (googleapis'
  `google.actions.sdk.v2.conversation.List`): with `typing.direct` (the default) betterproto
  writes `from typing import List` and then `class List(betterproto.Message)`, so every later
  `List[...]` subscripts the message class (`TypeError: type 'List' is not subscriptable`). In
  such a module, and only for the shadowed names, annotations say `typing.List[...]` (as
  `typing.root` writes them) and the module also does `import typing`. `typing.root` never
  imports names; `typing.310` puts them in strings that nothing evaluates, so neither breaks.
* A comment that is not a valid string literal once it is a docstring (googleapis'
  `google.cloud.bigquery.v2`: `"\N"`, a `\N{...}` escape without its name: `SyntaxError`):
  that docstring gets its backslashes doubled (and triple quotes escaped), so it reads as the
  comment does. Comments that are valid literals keep betterproto's text, even where Python
  reads an escape in them (`\t` becomes a tab; `\d` is a SyntaxWarning from Python 3.12 on).
"""

from __future__ import annotations

import ast
import builtins
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from betterproto.plugin.typing_compiler import DirectImportTypingCompiler

__all__ = [
    "SHADOWABLE_TYPING_NAMES",
    "ShadowSafeTypingCompiler",
    "docstring_safe_comment",
    "shadowed_typing_names",
]

# Every name `DirectImportTypingCompiler` imports from typing (betterproto 2.0.0b7).
SHADOWABLE_TYPING_NAMES = frozenset(
    {"AsyncIterable", "AsyncIterator", "Dict", "Iterable", "List", "Optional", "Union"}
)

# betterproto's get_comment (plugin/models.py): comments of messages, fields, enums and enum
# values are indented by 4; a one-line comment shorter than this becomes `"""text"""`.
_INDENT = 4
_ONE_LINE_BELOW = 79 - _INDENT - 6


@dataclass
class ShadowSafeTypingCompiler(DirectImportTypingCompiler):
    """`typing.direct`, except that the names in `shadowed` (module-level classes of the module
    being written) are written `typing.Name[...]`, with an `import typing`."""

    shadowed: frozenset[str] = frozenset()
    _qualified: bool = False  # some annotation says typing.Name: the module imports typing

    def optional(self, type: str) -> str:
        return self._checked(super().optional(type))

    def list(self, type: str) -> str:
        return self._checked(super().list(type))

    def dict(self, key: str, value: str) -> str:
        return self._checked(super().dict(key, value))

    def union(self, *types: str) -> str:
        return self._checked(super().union(*types))

    def iterable(self, type: str) -> str:
        return self._checked(super().iterable(type))

    def async_iterable(self, type: str) -> str:
        return self._checked(super().async_iterable(type))

    def async_iterator(self, type: str) -> str:
        return self._checked(super().async_iterator(type))

    def _checked(self, annotation: str) -> str:
        """`Name[...]` as the parent wrote it (it recorded `Name` for `from typing import`)."""
        name = annotation.partition("[")[0]
        if name not in self.shadowed:
            return annotation
        self._imports["typing"].discard(name)
        self._qualified = True
        return f"typing.{annotation}"

    def imports(self) -> builtins.dict[str, set[str] | None]:
        # The header template only tests this for truth; import_lines() writes the lines.
        found: builtins.dict[str, set[str] | None] = {k: v for k, v in self._imports.items() if v}
        return found or ({"typing": None} if self._qualified else {})

    def import_lines(self) -> Iterator[str]:
        if self._qualified:
            yield "import typing"
        for key, names in self._imports.items():
            if names:
                yield f"from {key} import ("
                yield from (f"    {name}," for name in sorted(names))
                yield ")"


def shadowed_typing_names(class_names: Iterable[str]) -> frozenset[str]:
    """The typing names that module-level classes named `class_names` would shadow."""
    return SHADOWABLE_TYPING_NAMES.intersection(class_names)


def docstring_safe_comment(comment: str) -> str:
    """`comment`, or, if betterproto's docstring of it would not be a valid string literal, the
    comment with backslashes doubled and triple quotes escaped (its docstring then reads as the
    comment does)."""
    if "\\" not in comment and '"""' not in comment:  # nearly every comment: nothing to check
        return comment
    if _is_valid_docstring(comment):
        return comment
    return comment.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _is_valid_docstring(comment: str) -> bool:
    """Whether the docstring betterproto's `get_comment` makes of `comment` is a valid literal."""
    lines = comment.strip().split("\n")
    if len(lines) == 1 and len(lines[0]) < _ONE_LINE_BELOW:
        literal = f'"""{lines[0].strip(chr(34))}"""'
    else:
        pad = " " * _INDENT
        joined = f"\n{pad}".join(lines)
        literal = f'"""\n{pad}{joined}\n{pad}"""'
    with warnings.catch_warnings():
        # "invalid escape sequence '\d'": valid, and betterproto's bytes are kept.
        warnings.simplefilter("ignore")
        try:
            ast.literal_eval(literal)
        except (SyntaxError, ValueError):
            return False
    return True
