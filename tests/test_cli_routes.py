"""`restmon routes`: every binding of generated packages, and the packages that fail to import
named with their exception, without hiding the others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.protoc_tools import generate_inline, write_response

RESTMON = Path(sys.executable).with_name("restmon")


def package_proto(package: str, resource: str) -> str:
    return f"""\
syntax = "proto3";
package {package};

import "google/api/annotations.proto";

message Get{resource.title()}Request {{
  string name = 1;
}}

message {resource.title()} {{
  string name = 1;
}}

service {resource.title()}s {{
  rpc Get{resource.title()}(Get{resource.title()}Request) returns ({resource.title()}) {{
    option (google.api.http) = {{get: "/v1/{{name={resource}s/*}}"}};
  }}
}}
"""


PROTOS = {
    "a/v1/a.proto": package_proto("a.v1", "apple"),
    "b/v1/b.proto": package_proto("b.v1", "banana"),
    "c/v1/c.proto": package_proto("c.v1", "cherry"),
}
APPLE = "GET /v1/{name=apples/*} a.v1.Apples/GetApple"
BANANA = "GET /v1/{name=bananas/*} b.v1.Bananas/GetBanana"
CHERRY = "GET /v1/{name=cherrys/*} c.v1.Cherrys/GetCherry"


@pytest.fixture(name="root")
def fixture_root(tmp_path: Path) -> Path:
    """The three packages generated (all outputs) into tmp_path/out/gen."""
    response = generate_inline(tmp_path, PROTOS)
    assert not response.error, response.error
    out = tmp_path / "out" / "gen"
    out.mkdir(parents=True)
    write_response(response, out)
    (out / "__init__.py").touch()
    return tmp_path / "out"


def routes(root: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RESTMON), "routes", *names], cwd=root, capture_output=True, text=True, check=False
    )


def test_routes_lists_every_package(root: Path) -> None:
    listed = routes(root, "gen")

    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout.splitlines() == [APPLE, BANANA, CHERRY]


def test_routes_names_each_package_that_fails_and_lists_the_others(root: Path) -> None:
    # Two packages whose dataclasses do not import, for two different reasons.
    (root / "gen/a/v1/__init__.py").write_text("class Broken(:\n")
    (root / "gen/c/v1/__init__.py").write_text(
        "raise TypeError(\"type 'List' is not subscriptable\")\n"
    )

    listed = routes(root, "gen")

    assert listed.returncode == 1
    assert listed.stdout.splitlines() == [BANANA]
    errors = listed.stderr.splitlines()
    assert errors[0].startswith(
        "restmon routes: cannot import gen.a.v1._restmon_routes: SyntaxError"
    )
    assert "gen/a/v1/__init__.py" in errors[0]
    assert errors[1] == (
        "restmon routes: cannot import gen.c.v1._restmon_routes: "
        "TypeError: type 'List' is not subscriptable"
    )
    assert errors[2:] == ["restmon routes: 2 route module(s) not listed (see above)"]


def test_routes_of_a_package_that_does_not_import_is_exit_2(root: Path) -> None:
    listed = routes(root, "gen.no_such_package")

    assert listed.returncode == 2
    assert listed.stdout == ""
    assert listed.stderr.startswith(
        "restmon routes: cannot import gen.no_such_package: ModuleNotFoundError"
    )
