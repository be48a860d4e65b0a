"""Proto files of generated packages: labels, listing, zip compiled by protoc, writing to disk."""

from __future__ import annotations

import base64
import importlib
import io
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf.descriptor_pb2 import (
    EDITION_2023,
    DescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    FileDescriptorSet,
)
from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.admin.protofiles import (
    RESERVED_LABELS,
    ProtoFiles,
    app_label,
    safe_relative_path,
)
from protoc_gen_restmon.runtime.descriptor_files import needed_files
from tests.support.protoc_tools import BUNDLED_PROTOC, EXAMPLE_FILES, debian_protoc

URL_SAFE = re.compile(r"^[A-Za-z0-9_.~-]+$")

LABELS = [
    pytest.param("bookstore/v1/bookstore.proto", "bookstore.v1.bookstore", id="nested"),
    pytest.param("money.proto", "money", id="top-level"),
    pytest.param("a/b.c.proto", "a.b~2Ec", id="dot-in-name"),
    pytest.param("a.b/c.proto", "a~2Eb.c", id="dot-in-directory"),
    pytest.param("a/b~c.proto", "a.b~7Ec", id="tilde"),
    pytest.param("notes.txt", "notes~2Etxt~", id="not-proto"),
    pytest.param("généré.proto", "g~C3~A9n~C3~A9r~C3~A9", id="utf-8"),
    pytest.param("download-all.proto", "~64ownload-all", id="reserved-download-all"),
    pytest.param("generate.proto", "~67enerate", id="reserved-generate"),
]


@pytest.mark.parametrize(("filename", "label"), LABELS)
def test_app_label_rule(filename: str, label: str) -> None:
    assert app_label(filename) == label


paths = st.lists(
    st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=6),
    min_size=1,
    max_size=3,
).map("/".join)


@given(paths, paths)
def test_app_labels_are_url_safe_and_unique(a: str, b: str) -> None:
    for name in (a, b, f"{a}.proto"):
        assert URL_SAFE.match(app_label(name)), name
        assert app_label(name) not in RESERVED_LABELS
    assert (app_label(a) == app_label(b)) == (a == b)
    assert app_label(f"{a}.proto") != app_label(a)


UNSAFE_PATHS = [
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("../etc/passwd", id="parent"),
    pytest.param("a/../../b.proto", id="inner-parent"),
    pytest.param("a//b.proto", id="empty-segment"),
    pytest.param("a/./b.proto", id="dot-segment"),
    pytest.param("a\\..\\b.proto", id="backslash"),
    pytest.param("a\0.proto", id="nul"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("filename", UNSAFE_PATHS)
def test_unsafe_paths_are_refused(filename: str) -> None:
    with pytest.raises(ValueError, match="unsafe proto file path"):
        safe_relative_path(filename)


def packages(bookstore_pb: ModuleType) -> list[str]:
    root = bookstore_pb.__name__.split(".")[0]
    return [bookstore_pb.__name__, f"{root}.common.v1"]


def embedded(bookstore_pb: ModuleType) -> dict[str, FileDescriptorProto]:
    """The descriptors the package needs (embedded, in common.v1's module or in the protobuf
    runtime), source info aside."""
    monitor = importlib.import_module(f"{bookstore_pb.__name__}._restmon_monitor")
    return {file.name: normalized(file.proto) for file in needed_files(monitor)}


def normalized(file: FileDescriptorProto) -> FileDescriptorProto:
    """Without source info, and without json names that only restate the default (protoc
    writes them, the protobuf runtime's own descriptors leave them out)."""
    copy = FileDescriptorProto()
    copy.CopyFrom(file)
    copy.ClearField("source_code_info")
    for field in fields(copy.message_type, copy.extension):
        if field.json_name == default_json_name(field.name):
            field.ClearField("json_name")
    return copy


def fields(
    messages: Iterable[DescriptorProto], extensions: Iterable[FieldDescriptorProto]
) -> Iterator[FieldDescriptorProto]:
    yield from extensions
    for message in messages:
        yield from message.field
        yield from fields(message.nested_type, message.extension)


def default_json_name(name: str) -> str:
    """protoc's json_name for a field that sets none: `foo_bar_baz` -> `fooBarBaz`."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def test_listing_holds_every_file_and_import_once(bookstore_pb: ModuleType) -> None:
    protos = ProtoFiles(packages(bookstore_pb))
    listing = protos.listing()
    names = [f["filename"] for f in listing["files"]]
    assert len(names) == len(set(names)) == listing["total_files"]
    assert set(EXAMPLE_FILES) <= set(names)
    assert {"google/api/annotations.proto", "google/protobuf/descriptor.proto"} <= set(names)
    assert listing["proto_dir"] is None
    [entry] = [f for f in listing["files"] if f["filename"] == "bookstore/v1/bookstore.proto"]
    text = protos.files[entry["app_label"]].text
    assert entry["app_label"] == "bookstore.v1.bookstore"
    assert entry["size_bytes"] == len(text.encode())
    assert entry["package"] == "bookstore.v1"
    assert entry["services_count"] == 1 and entry["messages_count"] == 0
    assert "service BookstoreService {" in text


def test_counts_match_the_descriptors(bookstore_pb: ModuleType) -> None:
    descriptors = embedded(bookstore_pb)
    for entry in ProtoFiles([bookstore_pb]).listing()["files"]:
        file = descriptors[entry["filename"]]
        assert entry["messages_count"] == len(file.message_type)
        assert entry["services_count"] == len(file.service)


def unzip(data: bytes, target: Path) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
        return archive.namelist()


def compile_with(command: list[str], root: Path, names: list[str], out: Path) -> None:
    result = subprocess.run(
        [*command, f"-I{root}", "--include_imports", f"--descriptor_set_out={out}", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def debian_protoc_command() -> list[str]:
    found = debian_protoc()
    if found is None:
        pytest.skip("Debian's protoc (protobuf-compiler) is not on PATH")
    return [found]


PROTOCS = [
    pytest.param(debian_protoc_command, id="debian-protoc"),
    # A newer protoc drops source-retention options from its output unless told to keep them.
    pytest.param(lambda: [*BUNDLED_PROTOC, "--retain_options"], id="grpc_tools"),
]


@pytest.mark.parametrize("protoc_command", PROTOCS)
def test_zip_compiles_to_the_embedded_descriptors(
    bookstore_pb: ModuleType, tmp_path: Path, protoc_command: Callable[[], list[str]]
) -> None:
    command = protoc_command()
    names = unzip(ProtoFiles(packages(bookstore_pb)).zip_bytes(), tmp_path / "tree")
    compile_with(command, tmp_path / "tree", names, tmp_path / "set.binpb")
    again = FileDescriptorSet.FromString((tmp_path / "set.binpb").read_bytes())
    expected = embedded(bookstore_pb)
    assert sorted(names) == sorted(expected)
    for file in again.file:
        assert normalized(file) == expected[file.name], file.name


def written(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): p.read_text()
        for p in directory.rglob("*.proto")
        if p.is_file()
    }


def test_generate_writes_every_file_with_its_directories(
    bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    protos = ProtoFiles([bookstore_pb], tmp_path / "out")
    answer = protos.generate(None, force=False)
    assert answer["status"] == "success" and answer["errors"] == []
    assert answer["generated_count"] == len(answer["generated"]) == len(protos.files)
    assert answer["proto_dir"] == str(tmp_path / "out")
    assert written(tmp_path / "out") == {f.filename: f.text for f in protos.files.values()}
    # The listing now reports the written files' times.
    [entry] = [e for e in protos.listing()["files"] if e["app_label"] == "common.v1.money"]
    stat = (tmp_path / "out" / "common/v1/money.proto").stat()
    assert entry["modified_at"] == stat.st_mtime


def test_generate_skips_unchanged_files_unless_forced(
    bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    protos = ProtoFiles([bookstore_pb], tmp_path)
    label = "bookstore.v1.bookstore"
    assert protos.generate([label], force=False)["generated"] == [label]
    target = tmp_path / "bookstore/v1/bookstore.proto"
    past = time.time() - 3600
    os.utime(target, (past, past))
    again = protos.generate([label], force=False)
    assert again["generated"] == [] and again["status"] == "success"
    assert target.stat().st_mtime == past
    forced = protos.generate([label], force=True)
    assert forced["generated"] == [label]
    assert target.stat().st_mtime > past + 1800


def test_generate_rewrites_a_changed_file(bookstore_pb: ModuleType, tmp_path: Path) -> None:
    protos = ProtoFiles([bookstore_pb], tmp_path)
    target = tmp_path / "common/v1/money.proto"
    target.parent.mkdir(parents=True)
    target.write_text("// stale\n")
    assert protos.generate(["common.v1.money"], force=False)["generated"] == ["common.v1.money"]
    assert target.read_text() == protos.files["common.v1.money"].text


UNKNOWN_APPS = [
    pytest.param(["nope"], "error", id="only-unknown"),
    pytest.param(["common.v1.money", "nope"], "partial", id="some-unknown"),
    pytest.param(["../../etc/passwd"], "error", id="traversal-is-just-unknown"),
]


@pytest.mark.parametrize(("apps", "status"), UNKNOWN_APPS)
def test_generate_reports_unknown_labels(
    bookstore_pb: ModuleType, tmp_path: Path, apps: list[str], status: str
) -> None:
    answer = ProtoFiles([bookstore_pb], tmp_path / "out").generate(apps, force=False)
    assert answer["status"] == status
    unknown = [a for a in apps if a != "common.v1.money"]
    assert answer["errors"] == [{"app_label": a, "error": "unknown app_label"} for a in unknown]
    assert all(p.is_relative_to(tmp_path / "out") for p in tmp_path.rglob("*") if p.is_file())


def test_generate_without_proto_dir_is_refused(bookstore_pb: ModuleType) -> None:
    with pytest.raises(LookupError, match="no proto_dir"):
        ProtoFiles([bookstore_pb]).generate(None, force=False)


FAKE_MONITOR = """\
PACKAGE = "fake.v1"
FILES = {files!r}
SERVICES = ()
FILE_DESCRIPTORS = {descriptors!r}
"""


@pytest.fixture
def odd_package(tmp_path: Path) -> Iterator[ModuleType]:
    """A package holding what protoc-gen-restmon cannot print (an editions file) or must not
    write (a path climbing out of proto_dir), as a tampered or future module could."""
    files = [
        FileDescriptorProto(name="fake/v1/ed.proto", syntax="editions", edition=EDITION_2023),
        FileDescriptorProto(name="../escape.proto", package="fake.v1", syntax="proto3"),
        FileDescriptorProto(name="fake/v1/ok.proto", package="fake.v1", syntax="proto3"),
    ]
    descriptors = tuple((f.name, base64.b64encode(f.SerializeToString()).decode()) for f in files)
    package = tmp_path / "src" / "restmon_fake_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_restmon_routes.py").write_text("BINDINGS = ()\n")
    (package / "_restmon_monitor.py").write_text(
        FAKE_MONITOR.format(files=tuple(f.name for f in files), descriptors=descriptors)
    )
    sys.path.insert(0, str(tmp_path / "src"))
    try:
        yield importlib.import_module("restmon_fake_pkg")
    finally:
        sys.path.remove(str(tmp_path / "src"))
        for name in [m for m in sys.modules if m.startswith("restmon_fake_pkg")]:
            del sys.modules[name]


def test_unprintable_and_unsafe_files_are_errors_not_crashes(
    odd_package: ModuleType, tmp_path: Path
) -> None:
    protos = ProtoFiles([odd_package], tmp_path / "out")
    assert set(protos.errors) == {"fake/v1/ed.proto", "../escape.proto"}
    assert "unsafe proto file path" in protos.errors["../escape.proto"]
    assert [f["filename"] for f in protos.listing()["files"]] == ["fake/v1/ok.proto"]
    with zipfile.ZipFile(io.BytesIO(protos.zip_bytes())) as archive:
        assert archive.namelist() == ["fake/v1/ok.proto"]
    answer = protos.generate(None, force=False)
    assert answer["status"] == "partial"
    assert answer["generated"] == ["fake.v1.ok"]
    assert {e["filename"] for e in answer["errors"]} == {"fake/v1/ed.proto", "../escape.proto"}
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*.proto")] == [
        Path("out/fake/v1/ok.proto")
    ]
    unknown = protos.generate([app_label("../escape.proto")], force=False)
    assert unknown["errors"] == [{"app_label": "~2E~2E.escape", "error": "unknown app_label"}]
