"""Tests for plugin.dataclasses: the bytes protoc-gen-python_betterproto writes, same request."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from pathlib import Path

import black
import pytest
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest

from protoc_gen_restmon.plugin.dataclasses import (
    DataclassGenerationError,
    _build_jobs,
    _parse_options,
    _render_module,
    generate_dataclasses,
    split_top_level,
)

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus" / "google-proto-files"
BETTERPROTO_PLUGIN = Path(sys.executable).parent / "protoc-gen-python_betterproto"

# Writes the request it gets to $CAPTURE_TO and answers with no files.
CAPTURE_PLUGIN = """\
import os, sys
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorResponse
with open(os.environ["CAPTURE_TO"], "wb") as out:
    out.write(sys.stdin.buffer.read())
sys.stdout.buffer.write(CodeGeneratorResponse(supported_features=1).SerializeToString())
"""

# Two packages that import each other (through different files), nested messages and enums,
# oneofs, maps, proto3 optional, deprecations, well-known types, all four method cardinalities,
# input messages from the same package, another package, google.protobuf and a nested message.
SHOP_PROTOS = {
    "shop/v1/ids.proto": """\
syntax = "proto3";
package shop.v1;

// Identifies an item across services.
message ItemId {
  string value = 1;
}
""",
    "shop/common/v1/money.proto": """\
syntax = "proto3";
package shop.common.v1;

import "google/protobuf/empty.proto";
import "shop/v1/ids.proto";

// An amount of money in one currency.
message Money {
  // ISO 4217 code, e.g. "EUR".
  string currency_code = 1;
  int64 units = 2;
  int32 nanos = 3;
}

// Prices keyed by item.
message PriceList {
  map<string, Money> prices = 1;
  repeated shop.v1.ItemId items = 2;
}

service Pricing {
  // Looks up one price.
  rpc GetPrice(shop.v1.ItemId) returns (Money);
  rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty);
}
""",
    "shop/v1/catalog.proto": """\
syntax = "proto3";
package shop.v1;

import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "shop/common/v1/money.proto";
import "shop/v1/ids.proto";

// Where an item is in its life.
enum State {
  // Not set.
  STATE_UNSPECIFIED = 0;
  STATE_ACTIVE = 1;
  // Gone for good;
  // kept for history.
  STATE_ARCHIVED = 2;
}

/* A thing for sale. It has a "name", a price, and a description long enough to need lines. */
message Item {
  // Kinds of item.
  enum Kind {
    KIND_UNSPECIFIED = 0;
    KIND_BOOK = 1;
  }
  // A dimension.
  message Size {
    message Unit {
      string symbol = 1;
    }
    double width = 1;
    float height = 2;
    Unit unit = 3;
  }
  ItemId id = 1;
  string name = 2;
  shop.common.v1.Money price = 3;
  Kind kind = 4;
  State state = 5;
  repeated string tags = 6;
  map<string, string> labels = 7;
  map<int32, Size> sizes = 8;
  oneof stock {
    // How many are left.
    int32 count = 9;
    bool unlimited = 10;
  }
  optional string note = 11;
  google.protobuf.Timestamp create_time = 12;
  google.protobuf.Duration ttl = 13;
  google.protobuf.StringValue alias = 14;
  google.protobuf.Int64Value rank = 15;
  google.protobuf.Struct attributes = 16;
  google.protobuf.Any extra = 17;
  bytes blob = 18;
  uint64 big = 19;
  sint32 delta = 20;
  fixed64 checksum = 21;
  string type = 22;
  int32 int = 23;
  repeated Size.Unit units = 24;
  string old_field = 25 [deprecated = true];
  optional Kind preferred_kind = 26;
  repeated google.protobuf.Timestamp history = 27;
}

message LegacyItem {
  option deprecated = true;
  string name = 1;
}

message GetItemRequest {
  ItemId id = 1;
  google.protobuf.FieldMask read_mask = 2;
}

message ListItemsRequest {
  int32 page_size = 1;
  string page_token = 2;
}

message ListItemsResponse {
  repeated Item items = 1;
  string next_page_token = 2;
}

message Outer {
  message Inner {
    string query = 1;
  }
}

// The catalog.
service Catalog {
  // Gets one item.
  rpc GetItem(GetItemRequest) returns (Item);
  rpc ListItems(ListItemsRequest) returns (stream Item);
  rpc UploadItems(stream Item) returns (ListItemsResponse);
  rpc Sync(stream Item) returns (stream Item);
  rpc Delete(ItemId) returns (google.protobuf.Empty) {
    option deprecated = true;
  }
  rpc Price(shop.common.v1.Money) returns (shop.common.v1.PriceList);
  rpc Search(Outer.Inner) returns (ListItemsResponse);
}

service Idle {}
""",
}

OPTIONS = [
    pytest.param("", id="default"),
    pytest.param("pydantic_dataclasses", id="pydantic"),
    pytest.param("typing.direct", id="typing-direct"),
    pytest.param("typing.root", id="typing-root"),
    pytest.param("typing.310", id="typing-310"),
    pytest.param("INCLUDE_GOOGLE", id="include-google"),
    pytest.param("pydantic_dataclasses,typing.310,INCLUDE_GOOGLE", id="all-at-once"),
]

# (directory under the corpus, betterproto options); every .proto file of the directory.
CORPUS_SAMPLE = [
    pytest.param("google/cloud/aiplatform/v1", "", id="aiplatform-v1"),
    pytest.param("google/api", "", id="api"),
    pytest.param("google/longrunning", "typing.310", id="longrunning-310"),
    pytest.param("google/pubsub/v1", "", id="pubsub-v1"),
    pytest.param("google/spanner/v1", "typing.root", id="spanner-v1-root"),
    pytest.param("google/firestore/v1", "", id="firestore-v1"),
    pytest.param("google/storage/v2", "pydantic_dataclasses", id="storage-v2-pydantic"),
    pytest.param("google/cloud/kms/v1", "", id="kms-v1"),
    pytest.param("google/cloud/run/v2", "", id="run-v2"),
    pytest.param("google/cloud/speech/v2", "", id="speech-v2"),
    pytest.param("google/cloud/vision/v1", "", id="vision-v1"),
    pytest.param("google/logging/v2", "", id="logging-v2"),
    pytest.param("google/monitoring/v3", "", id="monitoring-v3"),
    pytest.param("google/iam/v1", "INCLUDE_GOOGLE", id="iam-v1-google"),
    pytest.param("google/cloud/tasks/v2", "", id="tasks-v2"),
    pytest.param("grafeas/v1", "", id="grafeas-v1"),
    pytest.param("google/cloud/securitycenter/v2", "pydantic_dataclasses", id="scc-v2-pydantic"),
    pytest.param("google/cloud/dialogflow/cx/v3", "typing.310", id="dialogflow-cx-v3-310"),
    pytest.param("google/cloud/bigquery/v2", "", id="bigquery-v2"),
    pytest.param("google/cloud/discoveryengine/v1", "", id="discoveryengine-v1"),
    pytest.param("google/datastore/v1", "", id="datastore-v1"),
    pytest.param("google/bigtable/admin/v2", "", id="bigtable-admin-v2"),
    pytest.param("google/container/v1", "", id="container-v1"),
    pytest.param("google/ai/generativelanguage/v1beta", "", id="generativelanguage-v1beta"),
    # A message named List (betterproto's module does not import; ours does)
    pytest.param("google/actions/sdk/v2/conversation/prompt/content", "", id="actions-list"),
]


def write_protos(root: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return sorted(files)


def run_betterproto(
    scratch: Path, include: Path, files: list[str], option: str
) -> tuple[dict[str, str], bytes]:
    """betterproto's files for `files`, and the request protoc sent (one protoc run for both).

    protoc runs in an empty directory, so betterproto writes every parent `__init__.py`.
    """
    capture = scratch / "protoc-gen-capture"
    capture.write_text(f"#!{sys.executable}\n{CAPTURE_PLUGIN}")
    capture.chmod(0o755)
    out, cwd, request = scratch / "out", scratch / "cwd", scratch / "request.bin"
    out.mkdir()
    cwd.mkdir()
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{include}",
        f"--plugin=protoc-gen-python_betterproto={BETTERPROTO_PLUGIN}",
        f"--python_betterproto_out={out}",
        *([f"--python_betterproto_opt={option}"] if option else []),
        f"--plugin=protoc-gen-capture={capture}",
        f"--capture_out={scratch}",
        *files,
    ]
    env = {**os.environ, "CAPTURE_TO": str(request)}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    return written, request.read_bytes()


def capture_request(scratch: Path, include: Path, files: list[str]) -> bytes:
    capture = scratch / "protoc-gen-capture"
    capture.write_text(f"#!{sys.executable}\n{CAPTURE_PLUGIN}")
    capture.chmod(0o755)
    request = scratch / "request.bin"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{include}",
        f"--plugin=protoc-gen-capture={capture}",
        f"--capture_out={scratch}",
        *files,
    ]
    env = {**os.environ, "CAPTURE_TO": str(request)}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return request.read_bytes()


@pytest.fixture(scope="module")
def shop_request(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    src = tmp_path_factory.mktemp("shop")
    return capture_request(src, src, write_protos(src, SHOP_PROTOS))


@pytest.mark.parametrize("option", OPTIONS)
def test_generate_dataclasses_matches_betterproto(tmp_path: Path, option: str) -> None:
    src = tmp_path / "src"
    files = write_protos(src, SHOP_PROTOS)
    expected, request = run_betterproto(tmp_path, src, files, option)

    ours = generate_dataclasses(request, option)

    assert dict(ours) == expected
    assert len(ours) == len(expected)  # no file twice


@pytest.mark.parametrize("option", OPTIONS)
def test_generate_dataclasses_output_compiles(shop_request: bytes, option: str) -> None:
    for name, content in generate_dataclasses(shop_request, option):
        compile(content, name, "exec")


def test_generate_dataclasses_same_bytes_for_any_worker_count(shop_request: bytes) -> None:
    inline = generate_dataclasses(shop_request, "", workers=1)

    assert generate_dataclasses(shop_request, "", workers=2) == inline
    assert generate_dataclasses(shop_request, "", workers=3) == inline


@pytest.mark.parametrize("workers", [1, 2])
def test_without_black_the_modules_are_what_black_formats(
    shop_request: bytes, workers: int
) -> None:
    formatted = generate_dataclasses(shop_request, "", workers=workers)
    unformatted = generate_dataclasses(shop_request, "", workers=workers, black=False)

    assert [name for name, _ in unformatted] == [name for name, _ in formatted]
    assert unformatted != formatted  # black did change the layout
    for (_, raw), (_, done) in zip(unformatted, formatted, strict=True):
        assert black.format_str(raw, mode=black.Mode()) == done


def test_generate_dataclasses_file_order(shop_request: bytes) -> None:
    names = [name for name, _ in generate_dataclasses(shop_request, "")]

    # Modules in request order (ids.proto comes first: money.proto imports it), then parents.
    assert names == [
        "shop/v1/__init__.py",
        "shop/common/v1/__init__.py",
        "__init__.py",
        "shop/__init__.py",
        "shop/common/__init__.py",
    ]


def test_generate_dataclasses_parent_init_files_ignore_current_directory(
    shop_request: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # betterproto would skip shop/__init__.py here, because it exists in its current directory.
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("# mine\n")
    monkeypatch.chdir(tmp_path)

    files = dict(generate_dataclasses(shop_request, ""))

    assert files["shop/__init__.py"] == ""
    assert files["__init__.py"] == ""


@pytest.mark.parametrize("option", OPTIONS)
def test_split_top_level_pieces_format_like_the_whole_module(
    shop_request: bytes, option: str
) -> None:
    request = CodeGeneratorRequest.FromString(shop_request)
    for job in _build_jobs(request, _parse_options(option)):
        code = _render_module(job)
        pieces = split_top_level(code, chunk_chars=1)  # cut at every place it may cut

        formatted = "\n\n".join(black.format_str(p, mode=black.Mode()) for p in pieces)

        assert formatted == black.format_str(code, mode=black.Mode()), job.package
        assert "".join(pieces) == code
        if job.package == "shop.v1":
            assert len(pieces) > 10


def test_split_top_level_keeps_small_modules_whole() -> None:
    code = "import betterproto\n\n\nclass A:\n    pass\n\n\nclass B:\n    pass\n"

    assert split_top_level(code, chunk_chars=len(code)) == [code]
    assert split_top_level(code, chunk_chars=1) == [
        "import betterproto\n\n\nclass A:\n    pass\n\n\n",
        "class B:\n    pass\n",
    ]


def test_generate_dataclasses_rejects_two_typing_options(shop_request: bytes) -> None:
    with pytest.raises(DataclassGenerationError) as info:
        generate_dataclasses(shop_request, "typing.root,typing.310")

    assert info.value.package is None
    assert "multiple typing options" in str(info.value)


@pytest.mark.parametrize("workers", [pytest.param(1, id="inline"), pytest.param(2, id="pool")])
def test_generate_dataclasses_names_the_package_betterproto_fails_on(
    tmp_path: Path, workers: int
) -> None:
    # betterproto cannot model proto2 groups: NotImplementedError("Unknown type TYPE_GROUP").
    src = tmp_path / "src"
    files = write_protos(
        src,
        {
            "ok.proto": 'syntax = "proto3";\npackage fine.v1;\nmessage Fine { string a = 1; }\n',
            "legacy.proto": (
                'syntax = "proto2";\npackage legacy.v1;\n'
                "message Old { optional group Result = 1 { optional string url = 2; } }\n"
            ),
        },
    )
    request = capture_request(tmp_path, src, files)

    with pytest.raises(DataclassGenerationError) as info:
        generate_dataclasses(request, "", workers=workers)

    assert info.value.package == "legacy.v1"
    assert "TYPE_GROUP" in str(info.value)
    assert isinstance(info.value.__cause__, Exception)


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`")
@pytest.mark.parametrize(("directory", "option"), CORPUS_SAMPLE)
def test_generate_dataclasses_matches_betterproto_on_corpus(
    tmp_path: Path, directory: str, option: str
) -> None:
    files = sorted(str(p.relative_to(CORPUS)) for p in (CORPUS / directory).glob("*.proto"))
    expected, request = run_betterproto(tmp_path, CORPUS, files, option)

    ours = dict(generate_dataclasses(request, option))

    assert sorted(ours) == sorted(expected)
    for name, text in expected.items():
        if why_broken(text) is None:  # betterproto's module is valid Python: the same bytes
            assert ours[name] == text, name
        else:  # plugin/dataclass_repairs.py: ours is one that imports
            assert why_broken(ours[name]) is None, name
            assert name in KNOWN_BROKEN, (name, why_broken(text))


# Modules of CORPUS_SAMPLE that betterproto 2.0.0b7 writes broken (tests/test_dataclass_repairs.py).
KNOWN_BROKEN = {
    "google/cloud/bigquery/v2/__init__.py",
    "google/actions/sdk/v2/conversation/__init__.py",
}


def why_broken(module: str) -> str | None:
    """Why `module` would not import, as far as reading it tells, or None: a syntax error, or a
    top-level class named like a name it imports from typing (subscripting it fails)."""
    try:
        with warnings.catch_warnings():  # "invalid escape sequence": valid, only warned about
            warnings.simplefilter("ignore")
            tree = ast.parse(module)  # decodes every literal: an invalid escape is an error
    except SyntaxError as err:
        return f"SyntaxError: {err}"
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "typing"
        for alias in node.names
    }
    shadowing = sorted(
        node.name for node in tree.body if isinstance(node, ast.ClassDef) and node.name in imported
    )
    return f"classes shadowing typing names: {shadowing}" if shadowing else None
