"""The proto printer: print -> protoc -> the same FileDescriptorProto (source info aside)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.protobuf.descriptor_pb2 import EDITION_2023, FileDescriptorProto, FileDescriptorSet

from protoc_gen_restmon.cli import include_paths
from protoc_gen_restmon.runtime.protofiles.printer import (
    ProtoPrinter,
    UnsupportedProtoError,
    print_proto,
    print_protos,
)
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, REPO, write_protos

CORPUS = REPO / "corpus" / "google-proto-files"
_ERROR_FILE = re.compile(r"^([\w./-]+\.proto):(?:\d+:\d+: (?!warning)|\s)", re.MULTILINE)


def compile_set(
    includes: list[Path | str], files: list[str], out: Path, source_info: bool = True
) -> subprocess.CompletedProcess[str]:
    """grpc_tools' protoc with exactly `includes` (and its own well-known types last)."""
    listing = out.with_suffix(".args")
    listing.write_text("\n".join(files))
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"-I{p}" for p in includes),
        "--include_imports",
        "--retain_options",
        *(["--include_source_info"] if source_info else []),
        f"--descriptor_set_out={out}",
        f"@{listing}",
    ]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def descriptors(includes: list[Path | str], files: list[str], out: Path) -> FileDescriptorSet:
    result = compile_set(includes, files, out)
    assert result.returncode == 0, result.stderr
    return FileDescriptorSet.FromString(out.read_bytes())


def round_trip(
    original: FileDescriptorSet, scratch: Path, only: set[str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Print every file (those outside `only` or unsupported are copied from `scratch/orig`),
    compile the printed tree alone, and return (texts, names of files that differ)."""
    printed = scratch / "printed"
    printer = ProtoPrinter(list(original.file))
    texts: dict[str, str] = {}
    for file in original.file:
        target = printed / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            texts[file.name] = printer.print(file.name)
        except UnsupportedProtoError:
            shutil.copy(scratch / "orig" / file.name, target)
            continue
        target.write_text(texts[file.name])
    names = [f.name for f in original.file]
    result = compile_set([printed], names, scratch / "again.binpb", source_info=False)
    assert result.returncode == 0, result.stderr[-3000:]
    again = {
        f.name: f for f in FileDescriptorSet.FromString((scratch / "again.binpb").read_bytes()).file
    }
    different = []
    for file in original.file:
        if file.name not in texts or (only is not None and file.name not in only):
            continue
        expected = FileDescriptorProto()
        expected.CopyFrom(file)
        expected.ClearField("source_code_info")
        if again[file.name] != expected:
            different.append(file.name)
    return texts, different


def test_example_protos_round_trip(tmp_path: Path) -> None:
    original = descriptors([PROTOS, *include_paths()], EXAMPLE_FILES, tmp_path / "a.binpb")
    texts, different = round_trip(original, tmp_path)
    assert not different
    # Every imported file is printed too (google/api/*.proto, descriptor.proto, ...).
    assert {"google/api/annotations.proto", "google/protobuf/descriptor.proto"} <= set(texts)
    assert len(texts) == len(original.file)
    # Every full-line comment of the example sources survives, on a line of its own.
    for name in EXAMPLE_FILES:
        source = (PROTOS / name).read_text().splitlines()
        printed = {line.strip() for line in texts[name].splitlines()}
        comments = [line.strip() for line in source if line.strip().startswith("//")]
        assert comments
        assert [c for c in comments if c not in printed] == [], name


def test_comments_sit_at_their_elements(tmp_path: Path) -> None:
    text = inline_round_trip(
        tmp_path,
        """\
// License header (detached).

syntax = "proto3";

// The package.
package demo.v1;

// A thing.
// Two lines.
message Thing {
  int32 id = 1; // The id.
  // Leading for name.
  string name = 2;
}

// Colours.
enum Colour {
  COLOUR_UNSPECIFIED = 0; // none
}

// The service.
service Things {
  // Gets a thing.
  rpc Get(Thing) returns (Thing);
}
""",
    )
    lines = text.splitlines()
    assert lines[:3] == ["// License header (detached).", "", 'syntax = "proto3";']
    assert lines[lines.index("package demo.v1;") - 1] == "// The package."
    at = lines.index("message Thing {")
    assert lines[at - 2 : at] == ["// A thing.", "// Two lines."]
    assert "  int32 id = 1; // The id." in lines
    assert lines[lines.index("  string name = 2;") - 1] == "  // Leading for name."
    assert "  COLOUR_UNSPECIFIED = 0; // none" in lines
    assert lines[lines.index("service Things {") - 1] == "// The service."
    assert lines[lines.index("  rpc Get(.demo.v1.Thing) returns (.demo.v1.Thing);") - 1] == (
        "  // Gets a thing."
    )


def inline_round_trip(tmp_path: Path, source: str, name: str = "demo/v1/demo.proto") -> str:
    """Compile `source`, check the round trip of it and its imports, return its printed text."""
    src = tmp_path / "orig"
    write_protos(src, {name: source})
    original = descriptors([src, *include_paths()], [name], tmp_path / "a.binpb")
    for file in original.file:  # copies of the imports, for files the printer declines
        for root in [src, *map(Path, include_paths())]:
            if (root / file.name).is_file() and not (src / file.name).exists():
                (src / file.name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / file.name, src / file.name)
    texts, different = round_trip(original, tmp_path)
    assert not different, texts[name]
    return texts[name]


CASES: dict[str, tuple[str, list[str], list[str]]] = {
    "proto3_optional": (
        'syntax = "proto3";\npackage t;\n'
        "message M { optional int32 x = 1; oneof real { string a = 2; } optional string y = 3; }\n",
        ["  optional int32 x = 1;", "  oneof real {", "  optional string y = 3;"],
        ["_x", "_y"],
    ),
    "map": (
        'syntax = "proto3";\npackage t;\nmessage V {}\n'
        "message M { map<string, int64> counts = 1; message Inner {} map<int32, V> values = 2; }\n",
        ["  map<string, int64> counts = 1;", "  map<int32, .t.V> values = 2;"],
        ["CountsEntry", "ValuesEntry"],
    ),
    "oneof_with_options": (
        'syntax = "proto3";\npackage t;\nimport "google/api/field_behavior.proto";\n'
        "message M { int32 a = 1; oneof pick { string b = 2; int32 c = 3 "
        "[(google.api.field_behavior) = OPTIONAL]; } int32 d = 4; }\n",
        ["  oneof pick {", "    int32 c = 3 [(google.api.field_behavior) = OPTIONAL];"],
        [],
    ),
    "reserved": (
        'syntax = "proto3";\npackage t;\n'
        'message M { reserved 2, 15, 9 to 11, 40 to max; reserved "foo", "bar"; }\n'
        'enum E { E_UNSPECIFIED = 0; reserved 2, 5 to 8, 100 to max; reserved "OLD"; }\n',
        ["  reserved 9 to 11;", "  reserved 40 to max;", '  reserved "foo";', "  reserved 5 to 8;"],
        [],
    ),
    "enum_alias": (
        'syntax = "proto3";\npackage t;\n'
        "enum E { option allow_alias = true; A = 0; B = 1; C = 1 [deprecated = true]; }\n",
        ["  option allow_alias = true;", "  C = 1 [deprecated = true];"],
        [],
    ),
    "custom_option_aggregate": (
        'syntax = "proto3";\npackage t;\nimport "google/api/annotations.proto";\n'
        'import "google/api/field_behavior.proto";\nimport "google/api/resource.proto";\n'
        'import "google/api/client.proto";\n'
        'message Book { option (google.api.resource) = { type: "x.com/Book" pattern: "books/{b}" };'
        " string name = 1 [(google.api.field_behavior) = REQUIRED,"
        " (google.api.field_behavior) = IMMUTABLE]; }\n"
        'service S { option (google.api.default_host) = "x.com"; rpc Get(Book) returns (Book) {'
        ' option (google.api.http) = { get: "/v1/{name=books/*}" additional_bindings {'
        ' post: "/v1/x" body: "*" } }; option (google.api.method_signature) = "name"; } }\n',
        [
            "  option (google.api.resource) = {",
            '    type: "x.com/Book"',
            "    option (google.api.http) = {",
            '      get: "/v1/{name=books/*}"',
            "      additional_bindings {",
            '    option (google.api.method_signature) = "name";',
            '  option (google.api.default_host) = "x.com";',
            "(google.api.field_behavior) = REQUIRED, (google.api.field_behavior) = IMMUTABLE]",
        ],
        [],
    ),
    "json_name": (
        'syntax = "proto3";\npackage t;\n'
        'message M { string foo_bar = 1 [json_name = "fb"]; string baz_qux = 2; '
        'string same = 3 [json_name = "same"]; }\n',
        ['  string foo_bar = 1 [json_name = "fb"];', "  string baz_qux = 2;", "  string same = 3;"],
        [],
    ),
    "defaults_with_escapes": (
        'syntax = "proto2";\npackage t;\nenum E { A = 0; B = 1; }\n'
        "message M {\n"
        r'  optional string s = 1 [default = "a\"b\\c\n\x01é\t"];'
        "\n"
        r'  optional bytes b = 2 [default = "\000\377\"x"];'
        "\n  optional double d = 3 [default = -inf];\n  optional float f = 4 [default = nan];\n"
        "  optional E e = 5 [default = B];\n"
        "  optional int64 i = 6 [default = -9223372036854775808];\n"
        "  optional bool ok = 7 [default = true];\n  optional float g = 8 [default = 1e10];\n}\n",
        [
            "  optional .t.E e = 5 [default = B];",
            "  optional double d = 3 [default = -inf];",
            "  optional float f = 4 [default = nan];",
        ],
        [],
    ),
    "proto2_groups_extensions": (
        'syntax = "proto2";\npackage t;\nimport "google/protobuf/descriptor.proto";\n'
        "extend google.protobuf.FieldOptions { optional string tag = 50001; "
        "optional Note note = 50002; }\n"
        "message Note { optional string text = 1; repeated int32 n = 2 [packed = true]; }\n"
        "message M {\n  required int32 id = 1 [(tag) = \"k\", (note) = { text: 'hi' n: 1 n: 2 }];\n"
        "  optional group Result = 2 { optional string url = 3; }\n"
        "  message Plain {}\n  repeated group Item = 4 { required int32 v = 5; }\n"
        "  oneof o { string s = 6; group Inner = 7 { optional int32 w = 8; } }\n"
        "  extensions 100 to 199, 1000 to max;\n"
        "  extend M { optional int32 ext = 100; }\n}\n",
        [
            "  optional group Result = 2 {",
            "  repeated group Item = 4 {",
            "    group Inner = 7 {",
            "  extensions 1000 to max;",
            "  extend .t.M {",
            '(t.tag) = "k"',
            '(t.note) = { text: "hi" n: 1 n: 2 }',
        ],
        [],
    ),
    "streaming_and_imports": (
        'syntax = "proto3";\npackage t;\nimport public "google/protobuf/empty.proto";\n'
        'option java_package = "com.t"; option java_multiple_files = true;\n'
        'option go_package = "example.com/t;t"; option optimize_for = CODE_SIZE;\n'
        'option csharp_namespace = "T"; option cc_enable_arenas = true;\n'
        "service S { rpc Chat(stream google.protobuf.Empty)"
        " returns (stream google.protobuf.Empty) {}"
        " rpc Old(google.protobuf.Empty) returns (google.protobuf.Empty) {"
        " option deprecated = true; option idempotency_level = NO_SIDE_EFFECTS; } }\n",
        [
            'import public "google/protobuf/empty.proto";',
            'option java_package = "com.t";',
            "option optimize_for = CODE_SIZE;",
            "  rpc Chat(stream .google.protobuf.Empty) returns (stream .google.protobuf.Empty) {",
            "    option idempotency_level = NO_SIDE_EFFECTS;",
        ],
        [],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tricky_cases_round_trip(tmp_path: Path, case: str) -> None:
    source, present, absent = CASES[case]
    text = inline_round_trip(tmp_path, source)
    lines = text.splitlines()
    for expected in present:
        assert expected in lines or any(expected in line for line in lines), (expected, text)
    for unexpected in absent:
        assert unexpected not in text, (unexpected, text)


def test_editions_files_are_refused_by_name() -> None:
    file = FileDescriptorProto(name="x/ed.proto", syntax="editions", edition=EDITION_2023)
    with pytest.raises(UnsupportedProtoError, match=r"x/ed\.proto"):
        print_proto(file)
    assert issubclass(UnsupportedProtoError, ValueError)


def test_custom_options_from_imports_need_the_imports(tmp_path: Path) -> None:
    files = {
        "o/opts.proto": 'syntax = "proto3";\npackage o;\n'
        'import "google/protobuf/descriptor.proto";\n'
        "extend google.protobuf.MessageOptions { string label = 50100; }\n",
        "o/use.proto": 'syntax = "proto3";\npackage o;\nimport "o/opts.proto";\n'
        'message M { option (o.label) = "hi"; }\n',
    }
    write_protos(tmp_path / "src", files)
    found = descriptors([tmp_path / "src"], sorted(files), tmp_path / "a.binpb")
    use = next(f for f in found.file if f.name == "o/use.proto")
    with pytest.raises(
        UnsupportedProtoError, match=r"o/use\.proto: MessageOptions fields \[50100\]"
    ):
        print_proto(use)
    assert '  option (o.label) = "hi";' in print_proto(use, list(found.file)).splitlines()


def test_printing_is_deterministic(tmp_path: Path) -> None:
    original = descriptors([PROTOS, *include_paths()], EXAMPLE_FILES, tmp_path / "a.binpb")
    first = print_protos(list(original.file))
    second = print_protos(list(reversed(original.file)))
    assert first == second
    one = next(f for f in original.file if f.name == "bookstore/v1/bookstore.proto")
    assert print_proto(one, list(original.file)) == first[one.name]


def compilable(files: list[str], scratch: Path, chunks: int = 32) -> tuple[list[str], list[str]]:
    """`files` minus those protoc rejects, and the rejected ones; `scratch/corpus.binpb` holds
    the compiled rest. protoc stops at the first bad file, so each chunk of files is compiled
    alone and again without what it rejected (a retry costs a chunk, not the corpus), two
    protoc processes at a time; then the rest together (for clashes between files)."""
    parts = [files[i::chunks] for i in range(chunks)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        rejected = pool.map(
            lambda n: _rejected(parts[n], set(files), scratch / f"chunk{n}.binpb"), range(chunks)
        )
        found = set().union(*rejected)
    # Files that clash with each other (the same symbol defined twice) show only together.
    found |= _rejected([f for f in files if f not in found], set(files), scratch / "all.binpb")
    excluded = sorted(found)
    remaining = [f for f in files if f not in found]
    result = compile_set([CORPUS], remaining, scratch / "corpus.binpb")
    assert result.returncode == 0, result.stderr[-3000:]
    return remaining, excluded


def _rejected(files: list[str], known: set[str], out: Path) -> set[str]:
    """The files of `known` that protoc rejects when compiling `files` (theirs or their
    imports'), found one run at a time."""
    excluded: set[str] = set()
    while True:
        result = compile_set([CORPUS], [f for f in files if f not in excluded], out, False)
        if result.returncode == 0:
            return excluded
        stderr = result.stderr.replace(f"{CORPUS}/", "")
        bad = {m for m in _ERROR_FILE.findall(stderr) if m in known} - excluded
        assert bad, result.stderr[-3000:]
        excluded |= bad


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`")
def test_corpus_round_trip(tmp_path: Path) -> None:
    files = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.proto"))
    remaining, excluded = compilable(files, tmp_path)
    assert len(remaining) + len(excluded) == len(files)
    # Edition 2026 (google/protobuf/internal_options.proto and users) and broken test protos.
    assert "google/protobuf/internal_options.proto" in excluded
    assert len(excluded) < 20, excluded
    original = FileDescriptorSet.FromString((tmp_path / "corpus.binpb").read_bytes())
    (tmp_path / "orig").symlink_to(CORPUS)
    texts, different = round_trip(original, tmp_path)
    unsupported = [f.name for f in original.file if f.name not in texts]
    print(
        f"corpus: {len(files)} files, {len(excluded)} rejected by protoc, "
        f"{len(original.file)} compiled, {len(texts)} printed, "
        f"{len(unsupported)} editions files copied, {len(different)} different"
    )
    assert not different, different[:20]
    assert all(f.syntax == "editions" for f in original.file if f.name in unsupported)
    assert len(texts) > 7000
