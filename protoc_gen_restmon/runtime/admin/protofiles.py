"""The `.proto` files of generated packages: labels, listing, single files, a zip, writing to disk.

Files are those of each package's monitor module and every file they import, wherever each
is found (`runtime.descriptor_files`: the generated package owning it, or the protobuf runtime),
deduplicated by file name across packages, and are printed back to source by `proto_printer`.
Nothing here takes a path from a request: a request names a file by its `app_label`, a key of a
dictionary built here.
"""

from __future__ import annotations

import io
import os
import string
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from google.protobuf import descriptor_pb2 as d

from protoc_gen_restmon.runtime.descriptor_files import needed_files
from protoc_gen_restmon.runtime.gateway.services import GeneratedPackage
from protoc_gen_restmon.runtime.protofiles.printer import ProtoPrinter, UnsupportedProtoError

__all__ = ["ProtoFile", "ProtoFiles", "app_label", "safe_relative_path"]

_LABEL_SAFE = frozenset(string.ascii_letters + string.digits + "_-")
# Labels that would hide a file behind an endpoint of the same name.
RESERVED_LABELS = frozenset({"download-all", "generate"})


def app_label(filename: str) -> str:
    """The stable, unique, URL-safe label of a proto file path.

    The path loses its `.proto` suffix, each `/` becomes `.`, and every other byte outside
    `[A-Za-z0-9_-]` (`.` and `~` included) becomes `~XX` (upper-case hex of its UTF-8 byte). A
    path that does not end in `.proto` keeps its whole name and gets a trailing `~`; a label
    equal to an endpoint name (`download-all`, `generate`) has its first character escaped.
    The rule can be undone, so two paths never share a label:

    >>> app_label("bookstore/v1/bookstore.proto"), app_label("a/b.c.proto"), app_label("x.txt")
    ('bookstore.v1.bookstore', 'a.b~2Ec', 'x~2Etxt~')
    >>> app_label("generate.proto")
    '~67enerate'
    """
    stem, proto = (
        (filename[: -len(".proto")], True)
        if filename.endswith(".proto")
        else (
            filename,
            False,
        )
    )
    label = ".".join(_escape(segment) for segment in stem.split("/")) + ("" if proto else "~")
    if label in RESERVED_LABELS:
        label = f"~{ord(label[0]):02X}{label[1:]}"
    return label


def _escape(segment: str) -> str:
    return "".join(
        char if char in _LABEL_SAFE else "".join(f"~{b:02X}" for b in char.encode())
        for char in segment
    )


def safe_relative_path(filename: str) -> PurePosixPath:
    """`filename` as a relative path that stays below the directory it is joined to.

    Descriptor names come from protoc (relative to an include path), but a module's data is
    not trusted with the file system: absolute paths, `..`, empty segments, backslashes and
    NUL bytes are refused with ValueError.
    """
    path = PurePosixPath(filename)
    bad = (
        not filename
        or path.is_absolute()
        or "\\" in filename
        or "\0" in filename
        or any(part in ("", ".", "..") for part in filename.split("/"))
    )
    if bad:
        raise ValueError(f"unsafe proto file path {filename!r}")
    return path


@dataclass(frozen=True, slots=True)
class ProtoFile:
    """One printed `.proto` file."""

    app_label: str
    filename: str  # the path protoc knows it by, e.g. bookstore/v1/bookstore.proto
    package: str
    text: str
    data: bytes  # the text in UTF-8, as served and written
    messages_count: int
    services_count: int
    module_mtime: float  # mtime of the module it was taken from (generated, or a `_pb2`)


class ProtoFiles:
    """Every `.proto` file of some generated packages, printed once at construction.

    `errors` maps the names of files left out to the reason: files the printer refuses
    (editions files) and names that are not safe relative paths (`safe_relative_path`).
    """

    def __init__(self, packages: Sequence[ModuleType | str], proto_dir: Path | None = None) -> None:
        self.proto_dir = proto_dir
        descriptors, mtimes = _collect(GeneratedPackage.load(p) for p in packages)
        printer = ProtoPrinter(list(descriptors.values()))
        self.files: dict[str, ProtoFile] = {}
        self.errors: dict[str, str] = {}
        for name, file in descriptors.items():
            try:
                safe_relative_path(name)
                text = printer.print(name)
            except (ValueError, UnsupportedProtoError) as error:
                self.errors[name] = str(error)
                continue
            label = app_label(name)
            self.files[label] = ProtoFile(
                app_label=label,
                filename=name,
                package=file.package,
                text=text,
                data=text.encode(),
                messages_count=len(file.message_type),
                services_count=len(file.service),
                module_mtime=mtimes[name],
            )

    def listing(self) -> dict[str, Any]:
        """The answer of `GET /cfg/grpc/proto-files/`.

        `created_at` and `modified_at` (epoch seconds, as in the seed) are those of the file
        written into `proto_dir` when it exists there (its inode change and modification
        times), else both the modification time of the generated module embedding the file.
        """
        files = [self._entry(f) for f in sorted(self.files.values(), key=lambda f: f.filename)]
        return {"files": files, "total_files": len(files), "proto_dir": self._dir_name()}

    def _entry(self, file: ProtoFile) -> dict[str, Any]:
        created = modified = file.module_mtime
        written = None if self.proto_dir is None else self.proto_dir / file.filename
        if written is not None and written.is_file():
            stat = written.stat()
            created, modified = stat.st_ctime, stat.st_mtime
        return {
            "app_label": file.app_label,
            "filename": file.filename,
            "size_bytes": len(file.data),
            "package": file.package,
            "messages_count": file.messages_count,
            "services_count": file.services_count,
            "created_at": created,
            "modified_at": modified,
        }

    def zip_bytes(self) -> bytes:
        """Every file under its own path: `protoc -I <unzipped> <any file>` compiles as-is."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(self.files.values(), key=lambda f: f.filename):
                archive.writestr(str(safe_relative_path(file.filename)), file.data)
        return buffer.getvalue()

    def generate(self, apps: Sequence[str] | None, force: bool) -> dict[str, Any]:
        """Write the files named by `apps` (every file when None) into `proto_dir`.

        An unchanged file is left alone unless `force`. Unknown labels, write failures and the
        files left out at construction (when `apps` is None) are listed in `errors`;
        `status` is "success" without errors, "partial" with errors and some files written or
        current, "error" otherwise.
        """
        directory = self.proto_dir
        if directory is None:
            raise LookupError("no proto_dir is configured")
        errors: list[dict[str, str]] = []
        if apps is None:
            labels = sorted(self.files)
            errors.extend({"filename": n, "error": e} for n, e in sorted(self.errors.items()))
        else:
            labels = list(dict.fromkeys(apps))
        generated: list[str] = []
        done = 0
        for label in labels:
            file = self.files.get(label)
            if file is None:
                errors.append({"app_label": label, "error": "unknown app_label"})
                continue
            try:
                if _write(directory, file, force):
                    generated.append(label)
                done += 1
            except (ValueError, OSError) as error:
                errors.append({"app_label": label, "error": str(error)})
        status = "success" if not errors else ("partial" if done else "error")
        return {
            "status": status,
            "generated": generated,
            "generated_count": len(generated),
            "errors": errors,
            "proto_dir": self._dir_name(),
        }

    def _dir_name(self) -> str | None:
        return None if self.proto_dir is None else str(self.proto_dir)


def _write(directory: Path, file: ProtoFile, force: bool) -> bool:
    """Write one file below `directory`; False when it was already there with the same bytes."""
    target = directory / safe_relative_path(file.filename)
    if not force and target.is_file() and target.read_bytes() == file.data:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp")
    partial.write_bytes(file.data)
    os.replace(partial, target)  # readers never see half a file
    return True


def _collect(
    packages: Iterable[GeneratedPackage],
) -> tuple[dict[str, d.FileDescriptorProto], dict[str, float]]:
    """Descriptors by file name (the first package to need a file wins) and the mtime of the
    module each was taken from."""
    descriptors: dict[str, d.FileDescriptorProto] = {}
    mtimes: dict[str, float] = {}
    for package in packages:
        for file in needed_files(package.monitor):
            if file.name not in descriptors:
                descriptors[file.name] = file.proto
                mtimes[file.name] = os.stat(file.path).st_mtime if file.path else 0.0
    return descriptors, mtimes
