"""`.proto` source printed back from FileDescriptorProtos, comments included.

The printed file compiles with protoc to the same FileDescriptorProto (source info aside): type
names are printed fully qualified (`.pkg.Msg`), so they resolve identically wherever they appear;
map entries print as `map<K, V>`, proto3 `optional` hides its synthetic oneof, proto2 groups print
with their bodies, and nested types are interleaved with the fields that own map entries and groups
so the order of `nested_type` is preserved. Comments come from source_code_info (leading detached,
leading, trailing). Proto2 and proto3 only: an editions file raises UnsupportedProtoError (its
features change what labels and encodings mean, which this printer does not reconstruct).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf import descriptor_pb2 as d
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.protofiles import paths as P
from protoc_gen_restmon.runtime.protofiles.options import (
    OptionRenderer,
    UnsupportedProtoError,
    indent_block,
    render_default,
)
from protoc_gen_restmon.runtime.transcode.values import TYPE_NAMES

__all__ = ["ProtoPrinter", "UnsupportedProtoError", "print_proto", "print_protos"]

F = d.FieldDescriptorProto
# Scalar types print as their names; enums and messages as their type names.
_SCALARS = {t: name for t, name in TYPE_NAMES.items() if t != F.TYPE_ENUM}
_LABELS = {
    F.LABEL_OPTIONAL: "optional ",
    F.LABEL_REQUIRED: "required ",
    F.LABEL_REPEATED: "repeated ",
}
_FIELD_MAX = 536870912  # exclusive end of `max` for field numbers
_ENUM_MAX = 2147483647
Path = tuple[int, ...]


def default_json_name(name: str) -> str:
    """protoc's json name: underscores removed, the letter after each one upper-cased."""
    out: list[str] = []
    upper = False
    for char in name:
        if char == "_":
            upper = True
        else:
            out.append(char.upper() if upper else char)
            upper = False
    return "".join(out)


def _range(start: int, end: int, maximum: int) -> str:
    if end == maximum:
        return f"{start} to max"
    return str(start) if start == end else f"{start} to {end}"


class _Writer:
    def __init__(self, file: d.FileDescriptorProto, options: OptionRenderer) -> None:
        if file.syntax not in ("", "proto2", "proto3"):
            raise UnsupportedProtoError(f"{file.name}: {file.syntax} files are not supported")
        self.file, self.options = file, options
        self.proto3 = file.syntax == "proto3"
        self.lines: list[str] = []
        # A path can have several locations (extend blocks, repeated options): one per statement.
        self.locations: dict[Path, list[d.SourceCodeInfo.Location]] = {}
        for location in file.source_code_info.location:
            self.locations.setdefault(tuple(location.path), []).append(location)
        self.used: dict[Path, int] = {}

    # --- comments ---
    def _comment(self, text: str, indent: str) -> None:
        for line in text.removesuffix("\n").split("\n"):
            self.lines.append(f"{indent}//{line}".rstrip())

    def _next(self, path: Path) -> d.SourceCodeInfo.Location | None:
        found = self.locations.get(path, [])
        index = self.used.get(path, 0)
        self.used[path] = index + 1
        return found[index] if index < len(found) else None

    def element(self, path: Path, indent: str, text: str) -> None:
        """`text` (one statement or a block opener) with its comments."""
        location = self._next(path)
        if location is not None:
            for detached in location.leading_detached_comments:
                self._comment(detached, indent)
                self.lines.append("")
            if location.HasField("leading_comments"):
                self._comment(location.leading_comments, indent)
        trailing = location.trailing_comments.removesuffix("\n") if location else ""
        if trailing and "\n" not in trailing:
            self.lines.append(f"{indent}{text} //{trailing}")
            return
        self.lines.append(f"{indent}{text}")
        if trailing:
            self._comment(trailing, indent + ("  " if text.endswith("{") else ""))

    def close(self, indent: str) -> None:
        """A block's closing brace; `{}` when the block is empty."""
        if self.lines[-1].endswith(" {"):
            self.lines[-1] += "}"
        else:
            self.lines.append(f"{indent}}}")

    def option_statements(self, options: Message, path: Path, indent: str) -> None:
        for number, name, value in self.options.numbered(options, multiline=True):
            text = f"option {name} = {indent_block(value, indent)};"
            self.element((*path, number), indent, text)

    def brackets(self, options: Message, extra: Iterable[str] = ()) -> str:
        parts = [*extra, *(f"{n} = {v}" for n, v in self.options.items(options))]
        return f" [{', '.join(parts)}]" if parts else ""

    # --- file ---
    def render(self) -> str:
        file = self.file
        self.element((P.FILE_SYNTAX,), "", f'syntax = "{file.syntax or "proto2"}";')
        if file.HasField("package"):
            self.lines.append("")
            self.element((P.FILE_PACKAGE,), "", f"package {file.package};")
        if file.dependency:
            self.lines.append("")
        for i, dependency in enumerate(file.dependency):
            kind = (
                "public "
                if i in file.public_dependency
                else "weak "
                if i in file.weak_dependency
                else ""
            )
            self.element((P.FILE_DEPENDENCY, i), "", f'import {kind}"{dependency}";')
        if file.HasField("options"):
            self.lines.append("")
            self.option_statements(file.options, (P.FILE_OPTIONS,), "")
        prefix = f".{file.package}" if file.package else ""
        for i, message in enumerate(file.message_type):
            self.lines.append("")
            self.message(message, (P.FILE_MESSAGE, i), "", prefix)
        for i, enum in enumerate(file.enum_type):
            self.lines.append("")
            self.enum(enum, (P.FILE_ENUM, i), "")
        for i, service in enumerate(file.service):
            self.lines.append("")
            self.service(service, (P.FILE_SERVICE, i))
        self.extends(file.extension, (P.FILE_EXTENSION,), "")
        return "\n".join(self.lines) + "\n"

    # --- messages ---
    def message(self, message: d.DescriptorProto, path: Path, indent: str, scope: str) -> None:
        self.element(path, indent, f"message {message.name} {{")
        self.message_body(message, path, indent + "  ", f"{scope}.{message.name}")
        self.close(indent)

    def message_body(self, message: d.DescriptorProto, path: Path, inner: str, full: str) -> None:
        if message.HasField("options"):
            self.option_statements(message.options, (*path, P.MESSAGE_OPTIONS), inner)
        units = self._field_units(message)
        owners: dict[str, int] = {}
        for index, field in enumerate(message.field):
            name = field.type_name.rpartition(".")[2]
            if field.type == F.TYPE_GROUP and field.type_name == f"{full}.{name}":
                owners[name] = index
        for nested in message.nested_type:
            if nested.options.map_entry:
                owned = [
                    i for i, f in enumerate(message.field) if f.type_name == f"{full}.{nested.name}"
                ]
                if owned:
                    owners.setdefault(nested.name, owned[0])
        nested_by_name = {n.name: (j, n) for j, n in enumerate(message.nested_type)}
        done = 0
        for j, nested in enumerate(message.nested_type):
            if nested.name in owners:
                while done < len(units) and owners[nested.name] not in units[done]:
                    done += 1
                    self.unit(message, units[done - 1], path, inner, nested_by_name, full)
                if done < len(units):
                    done += 1
                    self.unit(message, units[done - 1], path, inner, nested_by_name, full)
            else:
                self.message(nested, (*path, P.MESSAGE_NESTED, j), inner, full)
        for unit in units[done:]:
            self.unit(message, unit, path, inner, nested_by_name, full)
        for j, enum in enumerate(message.enum_type):
            self.enum(enum, (*path, P.MESSAGE_ENUM, j), inner)
        for j, extension_range in enumerate(message.extension_range):
            end = extension_range.end - 1
            maximum = _ENUM_MAX - 1 if message.options.message_set_wire_format else _FIELD_MAX - 1
            text = f"extensions {_range(extension_range.start, end, maximum)}"
            text += self.brackets(extension_range.options)
            self.element((*path, P.MESSAGE_EXTENSION_RANGE, j), inner, text + ";")
        for j, reserved in enumerate(message.reserved_range):
            text = _range(reserved.start, reserved.end - 1, _FIELD_MAX - 1)
            self.element((*path, P.MESSAGE_RESERVED_RANGE, j), inner, f"reserved {text};")
        for j, name in enumerate(message.reserved_name):
            self.element((*path, P.MESSAGE_RESERVED_NAME, j), inner, f'reserved "{name}";')
        self.extends(message.extension, (*path, P.MESSAGE_EXTENSION), inner)

    def _field_units(self, message: d.DescriptorProto) -> list[list[int]]:
        units: list[list[int]] = []
        last_oneof = -1
        for index, field in enumerate(message.field):
            real_oneof = field.HasField("oneof_index") and not field.proto3_optional
            if real_oneof and field.oneof_index == last_oneof:
                units[-1].append(index)
            else:
                units.append([index])
            last_oneof = field.oneof_index if real_oneof else -1
        return units

    def unit(
        self,
        message: d.DescriptorProto,
        unit: list[int],
        path: Path,
        indent: str,
        nested: dict[str, tuple[int, d.DescriptorProto]],
        full: str,
    ) -> None:
        first = message.field[unit[0]]
        if not first.HasField("oneof_index") or first.proto3_optional:
            self.field(first, (*path, P.MESSAGE_FIELD, unit[0]), indent, nested, path, full)
            return
        oneof = message.oneof_decl[first.oneof_index]
        self.element((*path, P.MESSAGE_ONEOF, first.oneof_index), indent, f"oneof {oneof.name} {{")
        if oneof.HasField("options"):
            oneof_path = (*path, P.MESSAGE_ONEOF, first.oneof_index, P.ONEOF_OPTIONS)
            self.option_statements(oneof.options, oneof_path, indent + "  ")
        for index in unit:
            field = message.field[index]
            self.field(
                field,
                (*path, P.MESSAGE_FIELD, index),
                indent + "  ",
                nested,
                path,
                full,
                in_oneof=True,
            )
        self.lines.append(f"{indent}}}")

    def field(
        self,
        field: d.FieldDescriptorProto,
        path: Path,
        indent: str,
        nested: dict[str, tuple[int, d.DescriptorProto]],
        message_path: Path,
        full: str,
        in_oneof: bool = False,
    ) -> None:
        label = "" if in_oneof else self._label(field)
        extra = []
        if field.HasField("default_value"):
            extra.append(f"default = {render_default(field)}")
        if field.HasField("json_name") and field.json_name != default_json_name(field.name):
            extra.append(f'json_name = "{field.json_name}"')
        options = self.brackets(field.options, extra)
        short = field.type_name.rpartition(".")[2]
        entry = nested.get(short)
        if entry is not None and field.type_name == f"{full}.{short}":
            j, owned = entry
            if owned.options.map_entry:
                key, value = owned.field[0], owned.field[1]
                kinds = f"{self._type(key)}, {self._type(value)}"
                text = f"map<{kinds}> {field.name} = {field.number}{options};"
                self.element(path, indent, text)
                return
            if field.type == F.TYPE_GROUP:
                text = f"{label}group {owned.name} = {field.number}{options} {{"
                self.element(path, indent, text)
                self.message_body(
                    owned, (*message_path, P.MESSAGE_NESTED, j), indent + "  ", field.type_name
                )
                self.lines.append(f"{indent}}}")
                return
        text = f"{label}{self._type(field)} {field.name} = {field.number}{options};"
        self.element(path, indent, text)

    def _label(self, field: d.FieldDescriptorProto) -> str:
        if not self.proto3:
            return _LABELS[field.label]
        if field.proto3_optional:
            return "optional "
        return "repeated " if field.label == F.LABEL_REPEATED else ""

    @staticmethod
    def _type(field: d.FieldDescriptorProto) -> str:
        return _SCALARS.get(field.type, field.type_name)

    def extends(
        self, extensions: Sequence[d.FieldDescriptorProto], path: Path, indent: str
    ) -> None:
        extendee = None
        for k, extension in enumerate(extensions):
            if extension.extendee != extendee:
                if extendee is not None:
                    self.lines.append(f"{indent}}}")
                self.lines.append("")
                self.element(path, indent, f"extend {extension.extendee} {{")
                extendee = extension.extendee
            self.field(extension, (*path, k), indent + "  ", {}, path, "")
        if extendee is not None:
            self.lines.append(f"{indent}}}")

    # --- enums and services ---
    def enum(self, enum: d.EnumDescriptorProto, path: Path, indent: str) -> None:
        inner = indent + "  "
        self.element(path, indent, f"enum {enum.name} {{")
        if enum.HasField("options"):
            self.option_statements(enum.options, (*path, P.ENUM_OPTIONS), inner)
        for k, value in enumerate(enum.value):
            text = f"{value.name} = {value.number}{self.brackets(value.options)};"
            self.element((*path, P.ENUM_VALUE, k), inner, text)
        for k, reserved in enumerate(enum.reserved_range):
            text = _range(reserved.start, reserved.end, _ENUM_MAX)
            self.element((*path, P.ENUM_RESERVED_RANGE, k), inner, f"reserved {text};")
        for k, name in enumerate(enum.reserved_name):
            self.element((*path, P.ENUM_RESERVED_NAME, k), inner, f'reserved "{name}";')
        self.lines.append(f"{indent}}}")

    def service(self, service: d.ServiceDescriptorProto, path: Path) -> None:
        self.element(path, "", f"service {service.name} {{")
        if service.HasField("options"):
            self.option_statements(service.options, (*path, P.SERVICE_OPTIONS), "  ")
        for k, method in enumerate(service.method):
            request = ("stream " if method.client_streaming else "") + method.input_type
            response = ("stream " if method.server_streaming else "") + method.output_type
            text = f"rpc {method.name}({request}) returns ({response})"
            if method.HasField("options"):  # `{}` (even empty) gives the method options
                self.element((*path, P.SERVICE_METHOD, k), "  ", text + " {")
                method_options = (*path, P.SERVICE_METHOD, k, P.METHOD_OPTIONS)
                self.option_statements(method.options, method_options, "    ")
                self.close("  ")
            else:
                self.element((*path, P.SERVICE_METHOD, k), "  ", text + ";")
        self.close("")


class ProtoPrinter:
    """Prints files of one set (a package's files and all their imports)."""

    def __init__(self, files: Sequence[d.FileDescriptorProto]) -> None:
        self.files = {f.name: f for f in files}
        self.options = OptionRenderer(files)

    def print(self, name: str) -> str:
        try:
            return _Writer(self.files[name], self.options).render()
        except UnsupportedProtoError as error:
            if str(error).startswith(f"{name}:"):
                raise
            raise UnsupportedProtoError(f"{name}: {error}") from error


def print_proto(file: d.FileDescriptorProto, imports: Sequence[d.FileDescriptorProto] = ()) -> str:
    """`file` as `.proto` source; pass its imports so their custom options resolve."""
    return ProtoPrinter([*imports, file]).print(file.name)


def print_protos(files: Sequence[d.FileDescriptorProto]) -> dict[str, str]:
    """Every file of a self-contained set, by name."""
    printer = ProtoPrinter(files)
    return {f.name: printer.print(f.name) for f in files}
