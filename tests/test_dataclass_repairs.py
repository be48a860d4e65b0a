"""Where betterproto's own plugin writes a module that does not import, ours writes one that does
(plugin/dataclass_repairs.py): one small proto per case, real protoc, the module imported and used.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from protoc_gen_restmon.plugin.dataclass_repairs import docstring_safe_comment
from tests.support.protoc_tools import generate_inline, imported_output
from tests.test_dataclasses import run_betterproto, write_protos

# Messages and an enum named like what betterproto imports from typing, used before and after
# their definitions, in every position betterproto writes a typing name: fields (List, Dict,
# Optional), oneofs, and the stub's signatures (Optional, AsyncIterator, Union, Iterable,
# AsyncIterable).
SHADOWING = """\
syntax = "proto3";
package shadow.v1;

message Before {
  repeated string names = 1;
  List first = 2;
}

message List {
  repeated string items = 1;
}

enum Optional {
  OPTIONAL_UNSPECIFIED = 0;
  OPTIONAL_YES = 1;
}

message After {
  repeated List lists = 1;
  map<string, List> by_name = 2;
  optional string note = 3;
  Optional choice = 4;
  repeated Optional choices = 5;
}

service Lists {
  rpc Get(List) returns (After);
  rpc Watch(List) returns (stream List);
  rpc Upload(stream List) returns (After);
}
"""

# Comments betterproto copies into docstrings as they are: `\\N` without `{name}` and `\\x1`
# are no valid escapes (SyntaxError), a one-line comment ending in a backslash escapes the
# closing quote, and three quotes end the docstring early. `\\t` and `\\d` are valid (or only
# warned about) and stay as betterproto writes them.
COMMENTS = r"""syntax = "proto3";
package notes.v1;

// If you specify "\N", it is read as a null value.
message NullMarker {
  // Characters from '\x1' up are kept.
  string marker = 1;
  string path = 2;
}

// Tabs are written "\t"; digits match \d.
message Valid {
  string name = 1;
}

enum Escape {
  // Not "\N" either.
  ESCAPE_UNSPECIFIED = 0;
}
"""


def run_as_module(text: str, name: str) -> None:
    """Execute `text` as the module `name` (dataclasses look their module up in sys.modules)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        # dont_inherit: not under this file's `from __future__ import annotations`
        exec(compile(text, name, "exec", dont_inherit=True), vars(module))
    finally:
        del sys.modules[name]


def betterproto_module(tmp_path: Path, files: dict[str, str], module: str) -> str:
    src = tmp_path / "betterproto-src"
    written, _ = run_betterproto(tmp_path, src, write_protos(src, files), "")
    return written[module]


def generated(tmp_path: Path, files: dict[str, str], parameter: str = "") -> Any:
    response = generate_inline(tmp_path, files, f"outputs=dataclasses{parameter}")
    assert not response.error, response.error
    return response


def test_betterproto_writes_a_module_that_does_not_import_for_a_shadowing_class(
    tmp_path: Path,
) -> None:
    text = betterproto_module(
        tmp_path, {"shadow/v1/shadow.proto": SHADOWING}, "shadow/v1/__init__.py"
    )

    assert "from typing import (" in text and "class List(betterproto.Message)" in text
    with pytest.raises(TypeError, match="is not subscriptable"):
        run_as_module(text, "restmon_betterproto_shadow")


def test_a_class_shadowing_a_typing_name_is_written_typing_qualified(tmp_path: Path) -> None:
    response = generated(tmp_path, {"shadow/v1/shadow.proto": SHADOWING})
    [module] = [f.content for f in response.file if f.name == "shadow/v1/__init__.py"]

    assert "import typing\n" in module
    assert "typing.List[" in module and "typing.Optional[" in module
    assert " List[" not in module and " Optional[" not in module
    assert "Dict[" in module and "typing.Dict[" not in module  # not shadowed: as betterproto


def test_a_class_shadowing_a_typing_name_imports_and_works(tmp_path: Path) -> None:
    response = generated(tmp_path, {"shadow/v1/shadow.proto": SHADOWING})
    with imported_output(response, tmp_path) as gen:
        pb = importlib.import_module(f"{gen}.shadow.v1")

        after = pb.After(
            lists=[pb.List(items=["a"])],
            by_name={"k": pb.List(items=["b", "c"])},
            note="n",
            choice=pb.Optional.YES,
            choices=[pb.Optional.YES],
        )
        again = pb.After().parse(bytes(after))
        hints = typing.get_type_hints(pb.After, vars(pb))
        timeout = inspect.signature(pb.ListsStub.get).parameters["timeout"].annotation

        assert again == after
        assert again.by_name["k"].items == ["b", "c"]
        assert again.to_dict() == {
            "lists": [{"items": ["a"]}],
            "byName": {"k": {"items": ["b", "c"]}},
            "note": "n",
            "choice": "YES",
            "choices": ["YES"],
        }
        assert hints["lists"] == typing.List[pb.List]  # noqa: UP006 (what the module says)
        assert hints["choice"] is pb.Optional
        assert timeout == typing.Optional[float]  # noqa: UP045


def test_typing_root_and_310_are_left_as_betterproto_writes_them(tmp_path: Path) -> None:
    for option in ("typing.root", "typing.310"):
        response = generated(tmp_path / option, {"shadow/v1/shadow.proto": SHADOWING}, f",{option}")
        [module] = [f.content for f in response.file if f.name == "shadow/v1/__init__.py"]
        assert "from typing import (\n    Dict" not in module
        compile(module, option, "exec")


def test_betterproto_writes_a_module_that_does_not_compile_for_a_backslash_comment(
    tmp_path: Path,
) -> None:
    text = betterproto_module(tmp_path, {"notes/v1/notes.proto": COMMENTS}, "notes/v1/__init__.py")

    with pytest.raises(SyntaxError):
        compile(text, "notes/v1/__init__.py", "exec")


# The valid comment's `\d` stays as betterproto writes it, which Python warns about.
@pytest.mark.filterwarnings("ignore:invalid escape sequence")
def test_comments_that_are_no_valid_literal_are_escaped_and_read_as_written(
    tmp_path: Path,
) -> None:
    response = generated(tmp_path, {"notes/v1/notes.proto": COMMENTS})
    with imported_output(response, tmp_path) as gen:
        pb = importlib.import_module(f"{gen}.notes.v1")
        marker = pb.NullMarker(marker="\\N", path="/a/")

        assert pb.NullMarker().parse(bytes(marker)) == marker
        assert pb.NullMarker.__doc__.strip() == 'If you specify "\\N", it is read as a null value.'
    module = next(f.content for f in response.file if f.name == "notes/v1/__init__.py")
    assert "Characters from '\\\\x1' up are kept." in module
    assert 'Not "\\\\N" either.' in module


def test_comments_that_are_valid_literals_keep_betterproto_bytes(tmp_path: Path) -> None:
    theirs = betterproto_module(
        tmp_path, {"notes/v1/notes.proto": COMMENTS}, "notes/v1/__init__.py"
    )
    response = generated(tmp_path / "ours", {"notes/v1/notes.proto": COMMENTS})
    ours = next(f.content for f in response.file if f.name == "notes/v1/__init__.py")

    valid = '    """Tabs are written "\\t"; digits match \\d."""\n'
    assert valid in theirs and valid in ours
    assert ours.index(valid) > 0


# Comments that end a docstring early: betterproto's own plugin fails on them (black cannot parse
# its module); ours writes a module.
BREAKS_BLACK = r'''syntax = "proto3";
package quotes.v1;

// Say """hello""" three times.
message Greeting {
  // A path ends in \
  string path = 1;
}
'''


def test_comments_ending_a_docstring_early_are_escaped_and_read_as_written(
    tmp_path: Path,
) -> None:
    response = generated(tmp_path, {"quotes/v1/quotes.proto": BREAKS_BLACK})
    with imported_output(response, tmp_path) as gen:
        pb = importlib.import_module(f"{gen}.quotes.v1")

        assert pb.Greeting.__doc__ == 'Say """hello""" three times.'
        assert pb.Greeting().parse(bytes(pb.Greeting(path="/a/"))).path == "/a/"
    module = next(f.content for f in response.file if f.name == "quotes/v1/__init__.py")
    assert '"""A path ends in \\\\"""' in module


DOCSTRING_CASES = [
    pytest.param("plain words", "plain words", id="no-backslash"),
    pytest.param('a "\\t" tab', 'a "\\t" tab', id="valid-escape-kept"),
    pytest.param("match \\d+", "match \\d+", id="warned-escape-kept"),
    pytest.param('"\\N" is null', '"\\\\N" is null', id="bad-named-escape"),
    pytest.param("from \\x1 on", "from \\\\x1 on", id="bad-hex-escape"),
    pytest.param("ends in \\", "ends in \\\\", id="trailing-backslash-one-line"),
    pytest.param('say """hi"""', 'say \\"\\"\\"hi\\"\\"\\"', id="triple-quotes"),
    pytest.param("first\nthen \\u12", "first\nthen \\\\u12", id="bad-unicode-multi-line"),
]


@pytest.mark.parametrize(("comment", "expected"), DOCSTRING_CASES)
def test_docstring_safe_comment(comment: str, expected: str) -> None:
    assert docstring_safe_comment(comment) == expected
