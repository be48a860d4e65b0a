"""What the schemathesis runs of issue 14 share (tests/test_openapi_fuzz.py in process,
tests/test_openapi_fuzz_http.py over real HTTP and through `st run`): the checks, the operations
and what is left out of them, the hooks that point generated requests at real resources, and
`fuzz`, one bounded, derandomized run of one operation in one mode.

Real resources: generated ids rarely name a shelf or a book, so most answers would be 404s and
the 200 paths untested. `real_ids` (a `flatmap_case` hook) points about two thirds of the cases
whose path was generated valid at the seeded `shelves/fiction/books/dune` (`authors/herbert`,
chapter 1); operations that change or delete what they address get a scratch shelf and book
instead, which `prepare` (re)creates before each call. The ids match the path patterns, so the
cases stay valid. `prepare` also keeps the example's own rules (a borrower, a Book mask), and
two `filter_case` hooks drop cases whose claim the wire cannot keep (`negation_survives`) or
that betterproto garbles upstream (`no_negative_fractions`, proxy only). `install` puts the
hooks on a schema; tests/support/fuzz_hooks.py registers them for `st run`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

EXAMPLES = int(os.environ.get("RESTMON_FUZZ_EXAMPLES", "10"))
TIMEOUT = max(300, 30 * EXAMPLES)  # seconds a fuzz test may take (`make fuzz` raises EXAMPLES)
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
NDJSON = "application/x-ndjson"

# Query parameters cannot say "at most one of these" in OpenAPI: http.proto wins, the gateway
# refuses two members of one oneof (ListBooks' `lookup`: isbn_10, author) with a 400.
QUERY_ONEOF = "two members of one oneof as query parameters are a 400, which OpenAPI cannot say"
# The only parameter is a path segment `^[^/]+$`: schemathesis finds no invalid value it can put
# in a URL (every example is filtered out: hypothesis' Unsatisfiable).
NO_NEGATIVE = "schemathesis cannot generate invalid data for a lone path segment"
# `OPTIONS /v1/shelves/0:watch` is a 405 with `Allow: DELETE, GET, HEAD, PUT`: by http.proto's
# template syntax `0:watch` is also one segment, so `/v1/shelves/{shelf}` (GET, HEAD, PUT,
# DELETE) matches the URL too, and the router answers for every route the URL matches. One
# OpenAPI path item per template cannot say that another template's methods apply to its URLs.
CUSTOM_VERB_ALLOW = "a custom-verb URL also matches the template without the verb (its Allow)"

# (method, path, mode) -> why it is not fuzzed in that mode.
LEFT_OUT: dict[tuple[str, str, GenerationMode], str] = {
    ("GET", "/v1/shelves/{shelf}/books", POSITIVE): QUERY_ONEOF,
    ("GET", "/v1/shelves/{shelf}", NEGATIVE): NO_NEGATIVE,
    ("HEAD", "/v1/shelves/{shelf}", NEGATIVE): NO_NEGATIVE,
    ("GET", "/v1/shelves/{shelf}/books/{book}/files/{file}", NEGATIVE): NO_NEGATIVE,
    ("GET", "/v1/authors/{author}", NEGATIVE): NO_NEGATIVE,
}

# `st run` runs every operation in every mode and phase (coverage and stateful too, which
# send OPTIONS and other undocumented methods): there, checks are left out per operation.
# (method, path) -> {check name: why}.
CLI_LEFT_OUT: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/v1/shelves/{shelf}/books"): {"positive_data_acceptance": QUERY_ONEOF},
    ("GET", "/v1/shelves/{shelf}:watch"): {"allow_header_conformance": CUSTOM_VERB_ALLOW},
    ("POST", "/v1/shelves/{shelf}/books/{book}:checkout"): {
        "allow_header_conformance": CUSTOM_VERB_ALLOW
    },
}

# Every operation of the example document, by (method, path).
FUZZED: list[tuple[str, str]] = [
    ("GET", "/v1/shelves"),
    ("POST", "/v1/shelves"),
    ("GET", "/v1/shelves/{shelf}"),
    ("HEAD", "/v1/shelves/{shelf}"),
    ("PUT", "/v1/shelves/{shelf}"),
    ("DELETE", "/v1/shelves/{shelf}"),
    ("GET", "/v1/shelves/{shelf}:watch"),
    ("GET", "/v1/shelves/{shelf}/books"),
    ("POST", "/v1/shelves/{shelf}/books"),
    ("GET", "/v1/shelves/{shelf}/books/{book}"),
    ("PATCH", "/v1/shelves/{shelf}/books/{book}"),
    ("DELETE", "/v1/shelves/{shelf}/books/{book}"),
    ("GET", "/v1/authors/{author}/books/{book}"),
    ("POST", "/v1/shelves/{shelf}/books/{book}:checkout"),
    ("GET", "/v1/shelves/{shelf}/books/{book}/files/{file}"),
    ("GET", "/v1/shelves/{shelf}/books/{book}/chapters/{chapter_number}"),
    ("GET", "/v1/authors/{author}"),
    ("GET", "/v1/genres"),
    ("POST", "/v1/books:import"),
]

# The resources every path parameter can name: the example's seeded ones (examples/bookstore.py),
# and a scratch shelf and book for the operations that change or delete what they address.
REAL = {"shelf": "fiction", "book": "dune", "author": "herbert", "chapter_number": 1}
SCRATCH = {"shelf": "scratch", "book": "page"}
CHANGING = {"PUT", "PATCH", "DELETE"}
MASK = ("updateMask", "update_mask")  # UpdateBook's FieldMask, as a query parameter
BORROWER = ("memberId", "member_id", "libraryCard", "library_card")  # CheckoutBook's oneof
# GetBook's additional binding reads `authors/herbert/books/dune`, a name the example holds only
# once ImportBooks has put a book there (ImportBooks stores a book under the name it carries).
AUTHOR_BOOK = {"name": "authors/herbert/books/dune", "title": "Dune", "chapterTitles": {"1": "I"}}


def ndjson_lines_conform(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Each line of a streamed (`application/x-ndjson`) answer against the document's schema of
    one line, `{"result": …}` or `{"error": Status}`: schemathesis has no deserializer for the
    media type and skips it (`Schema validation skipped`). A long stream is kept in part: its
    cut last line is not checked."""
    if not _content_type(response).startswith(NDJSON):
        return None
    document = case.operation.schema.raw_schema
    validator = line_validator(document, case.path, case.method.lower(), response.status_code)
    lines = response.content.splitlines()
    if response.content_size > len(response.content):  # kept in part: the last line is cut
        lines = lines[:-1]
    for number, line in enumerate(lines, 1):
        errors = [e.message for e in validator.iter_errors(json.loads(line))]
        assert not errors, f"NDJSON line {number} does not match its schema: {errors}: {line!r}"
    return True


def _content_type(response: Response) -> str:
    return (response.headers.get("content-type") or [""])[0]


def line_validator(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    """A validator of one NDJSON line of this answer, `#/components` references resolved."""
    responses = document["paths"][path][method]["responses"]
    answer = responses.get(str(status), responses.get("default"))
    schema = answer["content"][NDJSON]["schema"]
    return Draft202012Validator({**schema, "components": document["components"]})


CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
    ndjson_lines_conform,
]


@schemathesis.serializer(NDJSON)
def _ndjson(context: Any, value: Any) -> bytes:
    """A client-streaming body: the schema is one message's, sent as one NDJSON line."""
    return json.dumps(value).encode() + b"\n"


def real_ids(context: HookContext, case: Case) -> Any:
    """A `flatmap_case` hook: two cases in three whose path is valid name real resources."""
    names = [name for name in case.path_parameters if name in REAL]
    if not names or (case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)):
        return st.just(case)
    ids = SCRATCH if case.method.upper() in CHANGING else REAL
    return st.sampled_from([True, True, False]).map(
        lambda real: _with_ids(case, {n: ids.get(n, REAL[n]) for n in names}) if real else case
    )


def _with_ids(case: Case, ids: dict[str, Any]) -> Case:
    case.path_parameters = {**case.path_parameters, **ids}
    return case


def prepare(case: Case) -> None:
    """Right before each call (in the CLI, a `before_call` hook: after schemathesis' own
    substitutions, which put ids it saw in answers into paths and bodies): the example's own
    rules are kept, the scratch resources exist."""
    if case.path.endswith(":checkout") and _valid_at(case, ParameterLocation.BODY):
        case.body = with_borrower(case.body)
    if case.method.upper() == "PATCH" and _valid_at(case, ParameterLocation.QUERY):
        case.query = with_book_mask(case.query)
    if case.method.upper() in CHANGING and case.path_parameters.get("shelf") == SCRATCH["shelf"]:
        make_scratch(case.operation.schema)


def _valid_at(case: Case, location: ParameterLocation) -> bool:
    return case.meta is None or not case.meta.is_negative_at(location)


def with_borrower(body: Any) -> Any:
    """CheckoutBook's body with a borrower. The example refuses a loan to nobody with a 400
    (`a borrower is required`): the proto says "Exactly one must be set" in a comment only, a
    rule of the service no document built from it can state (a oneof member cannot be
    REQUIRED)."""
    if not isinstance(body, dict) or any(body.get(key) for key in BORROWER):
        return body
    return {**{k: v for k, v in body.items() if k not in BORROWER}, "memberId": "m1"}


def with_book_mask(query: dict[str, Any]) -> dict[str, Any]:
    """UpdateBook's query with a mask naming a field of Book (`title`) when it has one. The
    example refuses other paths with a 400; a FieldMask in the proto says nothing of the message
    its paths name, so the document allows every well-formed path."""
    return {key: "title" if key in MASK else value for key, value in query.items()}


def make_scratch(schema: Any) -> None:
    """(Re)create the scratch shelf and book (a 409 says the shelf is there; CreateBook replaces
    the book)."""
    shelves = schema["/v1/shelves"]["POST"]
    shelves.Case(query={"shelfId": SCRATCH["shelf"]}, body={}).call()
    books = schema["/v1/shelves/{shelf}/books"]["POST"]
    book = {"title": "Page", "chapterTitles": {"1": "One"}}
    books.Case(
        path_parameters={"shelf": SCRATCH["shelf"]}, query={"bookId": SCRATCH["book"]}, body=book
    ).call()


def negation_survives(context: HookContext, case: Case) -> bool:
    """A `filter_case` hook: drops a case negative in its query whose map (deepObject) holds a
    value that is not a string (`labels[k]=null`): in a URL every value is text, the gateway
    reads the string "null" into a map<string, string>, and the case is valid once sent
    (schemathesis cannot tell for objects in a query, and reports the 200)."""
    if _valid_at(case, ParameterLocation.QUERY):
        return True
    maps = [value for value in case.query.values() if isinstance(value, dict)]
    return all(isinstance(item, str) for value in maps for item in value.values())


# A negative Duration with a fraction, as JSON writes it (`-1.5s`).
NEGATIVE_FRACTION = re.compile(r"^-[0-9]+\.[0-9]*[1-9][0-9]*s$")


def no_negative_fractions(context: HookContext, case: Case) -> bool:
    """A `filter_case` hook for a gateway in front of a grpclib upstream: drops a case holding a
    negative Duration with a fraction. betterproto's wire codec (the upstream's) writes -1.5s
    as seconds=-1, nanos=+500000000 (`_Duration.from_timedelta`), a Duration of mixed signs
    that the gateway cannot write as JSON (a 500 INTERNAL): betterproto's bug, not the
    gateway's (in process runtime/jsoncodec/bridge.py keeps one sign)."""
    return not any(NEGATIVE_FRACTION.match(text) for text in _strings([case.body, case.query]))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def install(api_schema: Any) -> Any:
    """`api_schema` with the hooks (`real_ids`, `negation_survives`) and the seed in place."""
    api_schema.hook("flatmap_case")(real_ids)
    api_schema.hook("filter_case")(negation_survives)
    seed(api_schema)
    return api_schema


def seed(schema: Any) -> None:
    """What `real_ids` names beyond the example's own seed: the book under its author."""
    imports = schema["/v1/books:import"]["POST"]
    reply = imports.Case(body=AUTHOR_BOOK, media_type=NDJSON).call()
    assert reply.status_code == 200, reply.text


def operations(api_schema: Any) -> set[tuple[str, str]]:
    found = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        found.add((operation.method.upper(), operation.path))
    return found


def fuzz(api_schema: Any, method: str, path: str, mode: GenerationMode) -> list[int]:
    """`EXAMPLES` cases of one operation in one mode, each called and checked with `CHECKS`;
    returns the status codes of the answers."""
    operation = api_schema[path][method]
    statuses: list[int] = []

    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    def run(case: Case) -> None:
        prepare(case)
        statuses.append(case.call_and_validate(checks=CHECKS).status_code)

    run()
    return statuses
