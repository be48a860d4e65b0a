"""Comments from `source_code_info`: the text above each message, field, enum, service, method.

Internal blocks `(-- … --)` (AIP-192) are stripped; the first paragraph becomes a summary where
OpenAPI has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Final

from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorProto

# Field numbers of descriptor.proto (FileDescriptorProto.message_type = 4, …).
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

_INTERNAL: Final = re.compile(r"\(--.*?--\)", re.DOTALL)
_BLANK_LINES: Final = re.compile(r"\n{3,}")


def clean(text: str) -> str:
    """A leading comment as documentation: internal blocks out, each line's indent of one
    space (protoc keeps the space after `//`) removed, surrounding blank lines trimmed."""
    text = _INTERNAL.sub("", text)
    lines = [line[1:] if line.startswith(" ") else line for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def split_summary(text: str) -> tuple[str, str]:
    """The first paragraph (joined to one line) and the whole text."""
    first = text.split("\n\n", 1)[0]
    return " ".join(first.split()), text


class Comments:
    """Documentation by full name: `bookstore.v1.Book`, `bookstore.v1.Book.title` (a field),
    `bookstore.v1.BookstoreService.GetBook` (a method), `bookstore.v1.Genre.GENRE_POETRY`."""

    def __init__(self, files: Sequence[FileDescriptorProto]) -> None:
        self._by_name: dict[str, str] = {}
        for file in files:
            by_path = {
                tuple(location.path): location.leading_comments
                for location in file.source_code_info.location
                if location.leading_comments
            }
            if by_path:
                for path, name in _elements(file):
                    text = clean(by_path.get(path, ""))
                    if text:
                        self._by_name[name] = text

    def get(self, full_name: str) -> str:
        return self._by_name.get(full_name, "")


def _elements(file: FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    prefix = f"{file.package}." if file.package else ""
    for i, message in enumerate(file.message_type):
        yield from _message_elements(message, (_FILE_MESSAGE, i), prefix)
    for i, enum in enumerate(file.enum_type):
        yield (_FILE_ENUM, i), prefix + enum.name
        for j, value in enumerate(enum.value):
            yield (_FILE_ENUM, i, _ENUM_VALUE, j), f"{prefix}{enum.name}.{value.name}"
    for i, service in enumerate(file.service):
        yield (_FILE_SERVICE, i), prefix + service.name
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICE, i, _SERVICE_METHOD, j), f"{prefix}{service.name}.{method.name}"


def _message_elements(
    message: DescriptorProto, path: tuple[int, ...], prefix: str
) -> Iterator[tuple[tuple[int, ...], str]]:
    name = prefix + message.name
    yield path, name
    for i, field in enumerate(message.field):
        yield (*path, _MESSAGE_FIELD, i), f"{name}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        yield from _message_elements(nested, (*path, _MESSAGE_NESTED, i), f"{name}.")
    for i, enum in enumerate(message.enum_type):
        yield (*path, _MESSAGE_ENUM, i), f"{name}.{enum.name}"
        for j, value in enumerate(enum.value):
            yield (*path, _MESSAGE_ENUM, i, _ENUM_VALUE, j), f"{name}.{enum.name}.{value.name}"
