"""The hooks module of `st run` (schemathesis.toml's `hooks`, tests/test_openapi_fuzz_http.py):
what tests/support/fuzz.py gives the Python runs, registered globally for the CLI's process. Not
imported by the pytest process, whose schemas get the hooks one by one."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

from tests.support.fuzz import ndjson_lines_conform, negation_survives, prepare, real_ids

schemathesis.hook("flatmap_case")(real_ids)
schemathesis.hook("filter_case")(negation_survives)
schemathesis.check(ndjson_lines_conform)


@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    prepare(case)
