"""build_request: path variables (docs/http-transcoding.md §3)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from protoc_gen_restmon.runtime.specs import FieldPath, PathVariable
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.transcode_fixtures import (
    BOOK,
    Api,
    Case,
    Failure,
    assert_fails,
    assert_same,
    bad,
    binding_of,
    expected,
    transcode,
)

# --- Path variables -----------------------------------------------------------------------------

PATH_CASES = [
    pytest.param(Case("GetShelf", ("s1",)), {"shelf": "s1"}, id="single-segment"),
    pytest.param(
        Case("GetShelf", ("café & co/%2F",)), {"shelf": "café & co/%2F"}, id="value-taken-as-is"
    ),
    pytest.param(
        Case("GetBookFile", ("shelves/s1/books/b1/files/covers/front.png",)),
        {"name": "shelves/s1/books/b1/files/covers/front.png"},
        id="multi-segment",
    ),
    pytest.param(
        Case("UpdateShelf", ("shelves/s1",)),
        {"shelf": {"name": "shelves/s1"}},
        id="nested-field-creates-parent",
    ),
    pytest.param(
        Case("GetChapter", (BOOK[0], "12")),
        {"book": BOOK[0], "chapterNumber": 12},
        id="int-converted",
    ),
    pytest.param(
        Case("PathTypes", ("-9223372036854775808", "COLOR_RED", "42", "3q2-7w", "true", "7")),
        {
            "id": "-9223372036854775808",
            "color": "COLOR_RED",
            "w": "42",
            "raw": "3q2+7w==",
            "flag": True,
            "inner": {"number": 7},
        },
        id="every-leaf-kind",
    ),
    pytest.param(
        Case("PathTypes", ("0", "2", "0", "", "false", "0")),
        {"id": "0", "color": "COLOR_GREEN", "w": "0", "inner": {}},
        id="defaults-wrapper-present",
    ),
    pytest.param(
        Case("PutInner", ("from-url",), body=b'{"text": "from-body", "number": 3}'),
        {"inner": {"text": "from-url", "number": 3}},
        id="url-wins-over-body",
    ),
    pytest.param(
        Case("UpdateShelf", ("shelves/s1",), body=b'{"name": "shelves/x", "displayName": "P"}'),
        {"shelf": {"name": "shelves/s1", "displayName": "P"}},
        id="url-wins-over-body-resource-name",
    ),
]


@pytest.mark.parametrize(("case", "document"), PATH_CASES)
def test_build_request_path(api: Api, case: Case, document: dict[str, Any]) -> None:
    assert_same(transcode(api, case), expected(api, case, document))


PATH_ERRORS = [
    pytest.param(
        Case("GetChapter", (BOOK[0], "twelve")),
        bad('path variable "chapter_number": invalid int32 value "twelve": expected a decimal …'),
        id="bad-int",
    ),
    pytest.param(
        Case("GetChapter", (BOOK[0], "2147483648")),
        bad('path variable "chapter_number": int32 value "2147483648" is out of range …'),
        id="int32-out-of-range",
    ),
    pytest.param(
        Case("PathTypes", ("1", "COLOR_BLUE", "0", "", "true", "0")),
        bad('path variable "color": "COLOR_BLUE" is not a value of enum kitchen.v1.Color'),
        id="bad-enum",
    ),
    pytest.param(
        Case("PathTypes", ("1", "1", "x", "", "true", "0")),
        bad('path variable "w": invalid int64 value "x": expected a decimal integer'),
        id="bad-wrapper",
    ),
    pytest.param(
        Case("PathTypes", ("1", "1", "1", "a", "true", "0")),
        bad('path variable "raw": invalid bytes value "a": expected base64'),
        id="bad-bytes",
    ),
    pytest.param(
        Case("PathTypes", ("1", "1", "1", "", "True", "0")),
        bad('path variable "flag": invalid bool value "True": expected "true" or "false"'),
        id="bad-bool",
    ),
    pytest.param(
        Case("GetShelf", ("\udcff",)),
        bad("path variable \"shelf\": 'utf-8' codec can't encode character '\\udcff' …"),
        id="lone-surrogate",
    ),
]


@pytest.mark.parametrize(("case", "failure"), PATH_ERRORS)
def test_build_request_path_errors(api: Api, case: Case, failure: Failure) -> None:
    assert_fails(api, case, failure)


@pytest.mark.parametrize(
    "proto",
    [
        pytest.param(("nope",), id="unknown-field"),
        pytest.param(("shelf", "nope"), id="unknown-nested-field"),
        pytest.param(("shelf",), id="message-leaf"),
        pytest.param(("shelf", "labels"), id="map-leaf"),
    ],
)
def test_build_request_path_not_matching_class_is_internal(
    api: Api, proto: tuple[str, ...]
) -> None:
    """A binding that does not fit its class is a server bug: 500, not the client's 400."""
    original = binding_of(api, Case("UpdateShelf"))
    variable = PathVariable(FieldPath(proto, proto), 1, 3, reserved_expansion=True)
    broken = dataclasses.replace(original, variables=(variable,), body=None)
    with pytest.raises(RpcError) as caught:
        transcode(api, Case("UpdateShelf", ("x",)), broken)
    assert (caught.value.code, caught.value.http_status) == (Code.INTERNAL, 500)
    assert caught.value.message.startswith(f'path variable "{".".join(proto)}": ')
