"""Mixins as googleapis serves them: Cloud Tasks' Locations under `/v2`, from the service YAML.

googleapis' `cloudtasks_v2.yaml` lists `google.cloud.location.Locations` under `apis:` and maps its
methods to `/v2/...` in `http.rules`; the npm corpus ships no YAML, so the test writes that part
of it. The YAML rules replace the `/v1/...` annotations of `locations.proto` (http.proto: the
service config overrides), the routes land in the generated `google.cloud.location` package, and a
gateway serving a Locations implementation (the server registers that service beside CloudTasks,
and calls go to `/google.cloud.location.Locations/...`) answers them over real HTTP.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from protoc_gen_restmon.runtime import Gateway
from protoc_gen_restmon.runtime.specs import Binding
from tests.support.protoc_tools import REPO, protoc, restmon_plugin
from tests.support.servers import uvicorn_server

CORPUS = REPO / "corpus" / "google-proto-files"
TASKS = "google/cloud/tasks/v2"
LOCATIONS = "google/cloud/location/locations.proto"

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`"),
]

# The part of googleapis' cloudtasks_v2.yaml that matters here, as it is published.
SERVICE_YAML = """\
type: google.api.Service
config_version: 3
name: cloudtasks.googleapis.com
title: Cloud Tasks API

apis:
- name: google.cloud.location.Locations
- name: google.cloud.tasks.v2.CloudTasks

http:
  fully_decode_reserved_expansion: true
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    get: '/v2/{name=projects/*/locations/*}'
  - selector: google.cloud.location.Locations.ListLocations
    get: '/v2/{name=projects/*}/locations'

authentication:
  rules:
  - selector: 'google.cloud.location.Locations.*'
    oauth:
      canonical_scopes: https://www.googleapis.com/auth/cloud-platform
"""


class Generated:
    def __init__(self, stderr: str, location: ModuleType, tasks: ModuleType) -> None:
        self.stderr = stderr
        self.location = location
        self.tasks = tasks

    def bindings(self, package: ModuleType) -> list[Binding]:
        routes = importlib.import_module(f"{package.__name__}._restmon_routes")
        return list(routes.BINDINGS)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    root = tmp_path_factory.mktemp("mixin")
    config = root / "cloudtasks_v2.yaml"
    config.write_text(SERVICE_YAML)
    out = root / "mixgen"
    out.mkdir()
    (out / "__init__.py").touch()
    files = sorted(str(p.relative_to(CORPUS)) for p in (CORPUS / TASKS).glob("*.proto"))
    result = protoc(
        [
            f"-I{CORPUS}",
            f"--plugin=protoc-gen-restmon={restmon_plugin()}",
            f"--restmon_out={out}",
            f"--restmon_opt=http_config={config}",
            *files,
            LOCATIONS,
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield Generated(
            result.stderr,
            importlib.import_module("mixgen.google.cloud.location"),
            importlib.import_module("mixgen.google.cloud.tasks.v2"),
        )
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "mixgen" or m.startswith("mixgen.")]:
            del sys.modules[name]


def test_yaml_rules_replace_the_mixin_annotations(generated: Generated) -> None:
    routes = [(b.method, b.http_method, b.template) for b in generated.bindings(generated.location)]
    assert routes == [
        ("ListLocations", "GET", "/v2/{name=projects/*}/locations"),
        ("GetLocation", "GET", "/v2/{name=projects/*/locations/*}"),
    ]
    notes = [line for line in generated.stderr.splitlines() if ": note: " in line]
    assert [n.split(": note: ")[1].split(" at ")[0] for n in notes] == [
        "this rule replaces the google.api.http annotation of "
        "google.cloud.location.Locations.GetLocation",
        "this rule replaces the google.api.http annotation of "
        "google.cloud.location.Locations.ListLocations",
    ]
    assert all(LOCATIONS in n for n in notes)


def test_the_yaml_flag_reaches_the_annotated_cloud_tasks_rules(generated: Generated) -> None:
    bindings = generated.bindings(generated.tasks)
    assert len(bindings) > 10
    assert all(b.fully_decode_reserved_expansion for b in bindings)


def services(location: ModuleType, tasks: ModuleType) -> list[Any]:
    class Locations(location.LocationsBase):  # type: ignore[misc, name-defined]
        async def get_location(self, request: Any) -> Any:
            return location.Location(name=request.name, location_id="here")

        async def list_locations(self, request: Any) -> Any:
            found = location.Location(name=f"{request.name}/locations/l1", location_id="l1")
            return location.ListLocationsResponse(locations=[found])

    class Tasks(tasks.CloudTasksBase):  # type: ignore[misc, name-defined]
        async def get_queue(self, request: Any) -> Any:
            return tasks.Queue(name=request.name)

    return [Tasks(), Locations()]


def test_gateway_serves_the_mixin_routes_over_http(generated: Generated) -> None:
    app = Gateway(services=services(generated.location, generated.tasks))
    with uvicorn_server(app) as url, httpx.Client(base_url=url) as client:
        got = client.get("/v2/projects/example.com%3Aalpha/locations/us-east1")
        assert got.status_code == 200, got.text
        assert got.json()["name"] == "projects/example.com:alpha/locations/us-east1"
        listed = client.get("/v2/projects/p1/locations")
        assert listed.status_code == 200, listed.text
        assert [loc["name"] for loc in listed.json()["locations"]] == ["projects/p1/locations/l1"]
        queue = client.get("/v2/projects/example.com%3Aalpha/locations/l/queues/q")
        assert queue.status_code == 200, queue.text
        assert queue.json()["name"] == "projects/example.com:alpha/locations/l/queues/q"
        # The annotations' own routes are gone: the YAML replaced them.
        assert client.get("/v1/locations/l").status_code == 404


def test_proxy_gateway_routes_the_mixin_to_the_locations_service(generated: Generated) -> None:
    """In proxy mode the call goes upstream as /google.cloud.location.Locations/GetLocation."""
    packages = [generated.tasks.__name__, generated.location.__name__]
    app = Gateway(upstream="127.0.0.1:1", packages=packages)
    match = app.router.match("GET", "/v2/projects/p1/locations/us-east1")
    assert match.binding.grpc_path == "/google.cloud.location.Locations/GetLocation"
    assert [(str(f), v) for f, v in match.params] == [("name", "projects/p1/locations/us-east1")]
