"""Duplicate routes conflict only where one gateway would serve both (issue 13 item 8).

Within a package, and across packages whose services share a `google.api.default_host`, a second
binding with the same HTTP method and shape is a generation error; across unrelated packages it
is not, and a gateway built with both packages refuses the pair when it is constructed.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from protoc_gen_restmon.runtime import Gateway
from protoc_gen_restmon.runtime.router import DuplicateRouteError
from tests.support.protoc_tools import generate_inline, imported_output, line_of

OPTIONS = "outputs=routes+monitor"


def package_proto(package: str, host: str | None, template: str = "/v1/{name=things/*}") -> str:
    host_option = f'  option (google.api.default_host) = "{host}";\n' if host else ""
    return f"""\
syntax = "proto3";
package {package};

import "google/api/annotations.proto";
import "google/api/client.proto";

message Req {{
  string name = 1;
}}

service Things {{
{host_option}  rpc Get(Req) returns (Req) {{
    option (google.api.http) = {{get: "{template}"}};
  }}
}}
"""


def two_packages(
    host_a: str | None, host_b: str | None, template_b: str = "/v1/{name=things/*}"
) -> dict[str, str]:
    return {
        "a/v1/a.proto": package_proto("a.v1", host_a),
        "b/v1/b.proto": package_proto("b.v1", host_b, template_b),
    }


APART = [
    pytest.param(None, None, id="no-hosts"),
    pytest.param("a.example.com", "b.example.com", id="different-hosts"),
    pytest.param("a.example.com", None, id="one-host"),
]


@pytest.mark.parametrize(("host_a", "host_b"), APART)
def test_same_route_in_unrelated_packages_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host_a: str | None, host_b: str | None
) -> None:
    response = generate_inline(tmp_path, two_packages(host_a, host_b), OPTIONS)
    assert response.error == ""
    assert capsys.readouterr().err == ""
    with imported_output(response, tmp_path) as gen:
        for package in ("a.v1", "b.v1"):
            routes = importlib.import_module(f"{gen}.{package}._restmon_routes")
            assert [b.template for b in routes.BINDINGS] == ["/v1/{name=things/*}"]
        # Each package alone is served; both in one gateway is refused at construction.
        Gateway(upstream="127.0.0.1:1", packages=[f"{gen}.a.v1"])
        Gateway(upstream="127.0.0.1:1", packages=[f"{gen}.b.v1"])
        with pytest.raises(DuplicateRouteError, match=r"a\.v1\.Things/Get"):
            Gateway(upstream="127.0.0.1:1", packages=[f"{gen}.a.v1", f"{gen}.b.v1"])


def test_same_route_in_packages_sharing_a_host_is_an_error(tmp_path: Path) -> None:
    files = two_packages("shared.example.com", "shared.example.com", "/v1/things/{name}")
    response = generate_inline(tmp_path, files, OPTIONS)
    first = f"a/v1/a.proto:{line_of(files['a/v1/a.proto'], 'option (google.api.http)')}"
    second = f"b/v1/b.proto:{line_of(files['b/v1/b.proto'], 'option (google.api.http)')}"
    assert response.error.splitlines() == [
        f"{second}: b.v1.Things.Get: duplicate route GET '/v1/things/{{name}}': same HTTP "
        f"method and shape as GET '/v1/{{name=things/*}}' of a.v1.Things.Get "
        f"({first}: a.v1.Things.Get), another package on the same host shared.example.com "
        "(the option duplicate_routes=warn accepts it)"
    ]
    assert list(response.file) == []


def test_same_route_in_one_package_stays_an_error_whatever_the_hosts(tmp_path: Path) -> None:
    text = package_proto("a.v1", "a.example.com").replace(
        "service Things {",
        'service Others {\n  option (google.api.default_host) = "o.example.com";\n'
        '  rpc Get(Req) returns (Req) {\n    option (google.api.http) = {get: "/v1/things/{name}"};'
        "\n  }\n}\n\nservice Things {",
    )
    response = generate_inline(tmp_path, {"a/v1/a.proto": text}, OPTIONS)
    assert "duplicate route GET '/v1/{name=things/*}'" in response.error
    assert "of a.v1.Others.Get" in response.error
    assert list(response.file) == []


def test_escapes_the_router_normalizes_are_duplicates(tmp_path: Path) -> None:
    """`%41` is `A` and `%2f` is `%2F` for the router, so for the plugin's check too."""
    text = package_proto("a.v1", None, "/v1/A%2fb").replace(
        "}\n}\n",
        "}\n  rpc Copy(Req) returns (Req) {\n    option (google.api.http) = "
        '{get: "/v1/%41%2Fb"};\n  }\n}\n',
    )
    response = generate_inline(tmp_path, {"a/v1/a.proto": text}, OPTIONS)
    assert "duplicate route GET '/v1/%41%2Fb': same HTTP method and shape as GET '/v1/A%2fb'" in (
        response.error
    )
