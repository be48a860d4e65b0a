"""`fully_decode_reserved_expansion` over real HTTP: what a multi-segment variable's handler sees.

Google's REST clients percent-encode `:` and `@` inside resource names
(`projects/example.com%3Aalpha`, service-account emails). Off (google.api.Http's default), a
multi-segment variable keeps the escapes of reserved characters; on, from the plugin option (or the
YAML) or from the gateway option, it is decoded fully except `%2F`
(docs/http-transcoding.md §1, §2).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from protoc_gen_restmon.runtime import Gateway, GatewayOptions
from tests.support.protoc_tools import generate_inline, imported_output
from tests.support.servers import uvicorn_server

PROTO = """\
syntax = "proto3";
package rx.v1;

import "google/api/annotations.proto";

message Named {
  string name = 1;
}

service Names {
  rpc GetProject(Named) returns (Named) {
    option (google.api.http) = {get: "/v1/{name=projects/*}"};
  }
  rpc GetAccount(Named) returns (Named) {
    option (google.api.http) = {get: "/v1/{name=projects/*/serviceAccounts/*}"};
  }
}
"""

# (URL path, what the handler sees when off, when on)
CASES = [
    (
        "/v1/projects/example.com%3Aalpha",
        "projects/example.com%3Aalpha",
        "projects/example.com:alpha",
    ),
    (
        "/v1/projects/p/serviceAccounts/a%40b.iam.gserviceaccount.com",
        "projects/p/serviceAccounts/a%40b.iam.gserviceaccount.com",
        "projects/p/serviceAccounts/a@b.iam.gserviceaccount.com",
    ),
    # %2F stays encoded either way: decoding it would change which segments the name has.
    ("/v1/projects/a%2Fb%20c", "projects/a%2Fb c", "projects/a%2Fb c"),
]

MODES = [
    pytest.param("", False, False, id="off"),
    pytest.param(",fully_decode_reserved_expansion", False, True, id="plugin-option"),
    pytest.param(",fully_decode_reserved_expansion=false", True, True, id="gateway-option"),
]


def echo_service(pb: Any) -> Any:
    class Names(pb.NamesBase):  # type: ignore[misc, name-defined]
        async def get_project(self, request: Any) -> Any:
            return pb.Named(name=request.name)

        async def get_account(self, request: Any) -> Any:
            return pb.Named(name=request.name)

    return Names()


@pytest.mark.parametrize(("option", "gateway_flag", "on"), MODES)
def test_handler_sees_reserved_escapes_decoded_only_when_on(
    tmp_path: Path, option: str, gateway_flag: bool, on: bool
) -> None:
    response = generate_inline(
        tmp_path, {"rx/v1/rx.proto": PROTO}, f"outputs=dataclasses+routes+monitor{option}"
    )
    assert response.error == ""
    with imported_output(response, tmp_path) as gen:
        pb = importlib.import_module(f"{gen}.rx.v1")
        options = GatewayOptions(fully_decode_reserved_expansion=gateway_flag)
        app = Gateway(services=[echo_service(pb)], options=options)
        with uvicorn_server(app) as url, httpx.Client(base_url=url) as client:
            for path, off_value, on_value in CASES:
                reply = client.get(path)
                assert reply.status_code == 200, reply.text
                assert reply.json() == {"name": on_value if on else off_value}, path
