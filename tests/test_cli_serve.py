"""`restmon serve`: the gateway in proxy mode as a real process, in front of a real grpclib server.

The upstream hosts the example Bookstore (examples/bookstore.py) in a thread; `restmon serve`
runs as a subprocess on the generated example package (tests/support/gateway_fixtures.py) and is
called over HTTP with httpx, then stopped with SIGTERM as a process manager would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from examples.bookstore import make_service
from protoc_gen_restmon.cli import main
from protoc_gen_restmon.runtime.admin import create_admin_token
from protoc_gen_restmon.runtime.monitor.model import RequestQuery
from protoc_gen_restmon.runtime.monitor.stores import open_store
from protoc_gen_restmon.serve_cli import channel_option
from tests.support.gateway_fixtures import DUNE, GENERATED
from tests.support.pki import Pki
from tests.support.proxy_fixtures import RunningUpstream, running_upstream
from tests.support.servers import free_port
from tests.support.upstream_process import UpstreamProcess

RESTMON = [str(Path(sys.executable).with_name("restmon"))]  # the installed console script


def output_root(pb: ModuleType) -> Path:
    """The directory holding the generated root package (`<root>/restmon_gateway_gen/...`)."""
    return Path(pb.__file__ or "").resolve().parents[3]


def serve_command(upstream: str, *args: str) -> list[str]:
    return [*RESTMON, "serve", "--upstream", upstream, "--log-level", "warning", *args]


@pytest.fixture(name="upstream", scope="module")
def fixture_upstream(bookstore_pb: ModuleType) -> Iterator[RunningUpstream]:
    with running_upstream(make_service(bookstore_pb)) as upstream:
        yield upstream


def wait_until_serving(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"restmon serve exited: {process.communicate()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("restmon serve did not start listening")


def run_server(command: list[str], cwd: Path, port: int) -> Iterator[str]:
    """`command` as a subprocess serving on `port`; yields its base URL, then SIGTERMs it."""
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{base}/")
        yield base
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        # A clean stop (runtime/serving.py; tests/test_stop.py has the calls in flight).
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(name="served", scope="module")
def fixture_served(
    bookstore_pb: ModuleType, upstream: RunningUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`restmon serve --package <generated root> --path <its directory>` from an unrelated cwd."""
    port = free_port()
    command = serve_command(
        upstream.address,
        *("--package", GENERATED, "--path", str(output_root(bookstore_pb))),
        *("--port", str(port), "--root-path", "/api"),
    )
    yield from run_server(command, tmp_path_factory.mktemp("cwd"), port)


def test_serve_proxies_rest_calls_to_the_upstream(served: str) -> None:
    reply = httpx.get(f"{served}/v1/{DUNE}")
    assert reply.status_code == 200, reply.text
    assert reply.json()["title"] == "Dune"
    assert reply.headers["content-type"] == "application/json"


def test_serve_forwards_writes_and_errors(served: str) -> None:
    created = httpx.post(f"{served}/v1/shelves?shelf_id=cli", json={"displayName": "CLI"})
    assert created.status_code == 200, created.text
    assert created.json()["name"] == "shelves/cli"
    again = httpx.post(f"{served}/v1/shelves?shelf_id=cli", json={})
    assert again.status_code == 409
    assert again.json()["code"] == 6  # ALREADY_EXISTS, from the upstream
    assert httpx.get(f"{served}/v1/shelves/nowhere").status_code == 404


def test_serve_runs_below_the_root_path(served: str) -> None:
    """--root-path /api: a reverse proxy strips /api, uvicorn puts it back in the ASGI scope,
    the gateway routes below it."""
    reply = httpx.get(f"{served}/v1/{DUNE}")
    assert reply.status_code == 200, reply.text
    missing = httpx.get(f"{served}/v2/nothing")
    assert missing.status_code == 404
    assert missing.json()["message"] == "no route matches the path '/v2/nothing'"


def test_serve_serves_the_openapi_document_and_docs_page(served: str) -> None:
    """Below --root-path /api: the document's server and the page's URLs say /api."""
    document = httpx.get(f"{served}/openapi.json")
    assert document.status_code == 200, document.text
    assert document.json()["servers"] == [{"url": "/api"}]
    page = httpx.get(f"{served}/docs")
    assert page.status_code == 200
    assert 'data-openapi-url="/api/openapi.json"' in page.text


def test_serve_finds_packages_from_the_working_directory(
    bookstore_pb: ModuleType, upstream: RunningUpstream
) -> None:
    """Without --path, run from the directory holding the generated code; a dotted package."""
    port = free_port()
    command = serve_command(
        upstream.address, "--package", f"{GENERATED}.bookstore.v1", "--port", str(port)
    )
    for base in run_server(command, output_root(bookstore_pb), port):
        assert httpx.get(f"{base}/v1/shelves/fiction").json()["displayName"] == "Fiction"


def test_serve_without_upstream_answers_503(bookstore_pb: ModuleType) -> None:
    port = free_port()
    command = serve_command(
        f"127.0.0.1:{free_port()}",
        *("--package", GENERATED, "--path", str(output_root(bookstore_pb))),
        *("--port", str(port), "--connect-timeout", "0.5"),
    )
    for base in run_server(command, output_root(bookstore_pb), port):
        reply = httpx.get(f"{base}/v1/{DUNE}")
        assert reply.status_code == 503
        assert reply.json()["code"] == 14  # UNAVAILABLE


def test_serve_records_calls_into_the_db(
    bookstore_pb: ModuleType, upstream: RunningUpstream, tmp_path: Path
) -> None:
    """--db: every REST call is recorded, and written before the process exits; the admin API
    is served beside the routes, behind admin credentials."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    store = open_store(url)
    try:
        _, token = create_admin_token(store, "tests")
    finally:
        store.close()
    port = free_port()
    command = serve_command(
        upstream.address,
        *("--package", GENERATED, "--path", str(output_root(bookstore_pb))),
        *("--port", str(port), "--db", url),
    )
    for base in run_server(command, tmp_path, port):
        assert httpx.get(f"{base}/v1/{DUNE}").status_code == 200
        assert httpx.get(f"{base}/v1/shelves/nowhere").status_code == 404
        admin = f"{base}/api/grpc/monitor/requests/"
        assert httpx.get(admin).status_code == 401
        assert eventually_counted(admin, token) == 2
    store = open_store(url)
    try:
        page = store.requests(RequestQuery())
    finally:
        store.close()
    calls = sorted((r.method_name, r.grpc_status_code, r.transport) for r in page.results)
    assert calls == [("GetBook", "OK", "http"), ("GetShelf", "NOT_FOUND", "http")]


def eventually_counted(url: str, token: str) -> int:
    """The admin API's request count once both calls are written (the writer batches)."""
    deadline = time.monotonic() + 10
    while True:
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        count = int(answer.json()["count"])
        if count >= 2 or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_serve_with_mutual_tls_to_the_upstream(
    bookstore_pb: ModuleType, mutual_upstream: UpstreamProcess, pki: Pki, tmp_path: Path
) -> None:
    """--upstream-ca trusts a private CA, --upstream-cert/--upstream-key answer the server's
    request for a client certificate (tests/test_proxy_tls.py's PKI and TLS upstream)."""
    port = free_port()
    command = serve_command(
        mutual_upstream.address,
        *("--package", GENERATED, "--path", str(output_root(bookstore_pb))),
        *("--upstream-ca", str(pki.ca), "--port", str(port)),
        *("--upstream-cert", str(pki.client_cert), "--upstream-key", str(pki.client_key)),
    )
    for base in run_server(command, tmp_path, port):
        reply = httpx.get(f"{base}/v1/shelves/fiction")
        assert reply.status_code == 200, reply.text
        assert reply.json()["name"] == "shelves/fiction"


@pytest.mark.slow
def test_serve_takes_a_grpc_target_and_channel_options(
    bookstore_pb: ModuleType, upstream: RunningUpstream, tmp_path: Path
) -> None:
    """`--upstream ipv4:…` (a list of replicas, here one) and `--upstream-option K=V`, given to
    grpcio as they are: a receive limit below the response's size is RESOURCE_EXHAUSTED."""
    port = free_port()
    command = serve_command(
        f"ipv4:127.0.0.1:{upstream.port}",
        *("--package", GENERATED, "--path", str(output_root(bookstore_pb))),
        *("--port", str(port), "--retry-attempts", "3", "--keepalive", "30"),
        *("--upstream-option", "grpc.max_receive_message_length=16"),
        *("--upstream-transport", "grpcio"),  # whatever RESTMON_UPSTREAM_TRANSPORT says
    )
    for base in run_server(command, tmp_path, port):
        assert httpx.get(f"{base}/v1/shelves/fiction/books/dune").status_code == 429
        assert httpx.head(f"{base}/v1/shelves/fiction").status_code == 200  # Empty passes


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("grpc.max_receive_message_length=8388608", ("grpc.max_receive_message_length", 8388608)),
        ("grpc.primary_user_agent=restmon", ("grpc.primary_user_agent", "restmon")),
        ("grpc.lb_policy_name=a=b", ("grpc.lb_policy_name", "a=b")),
    ],
)
def test_upstream_option_values_are_integers_when_they_can_be(
    text: str, option: tuple[str, int | str]
) -> None:
    assert channel_option(text) == option


@pytest.mark.parametrize("text", ["no-equals", "=1"])
def test_upstream_option_without_a_key_is_a_usage_error(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "serve",
                "--upstream",
                "localhost:1",
                "--package",
                GENERATED,
                "--upstream-option",
                text,
            ]
        )
    assert exited.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--upstream", "localhost", "--package", GENERATED], "expected host:port", id="port"
        ),
        pytest.param(
            ["--upstream", "dns:///", "--package", GENERATED], "names no address", id="empty-dns"
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", GENERATED, "--retry-attempts", "1"],
            "max_attempts 1 is not 2 to 5",
            id="one-attempt",
        ),
        pytest.param(
            ["--upstream", ":50051", "--package", GENERATED], "expected host:port", id="host"
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", "no_such_package_xyz"],
            "cannot import no_such_package_xyz",
            id="unimportable",
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", "json"],
            "json holds no protoc-gen-restmon modules",
            id="not-generated",
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", GENERATED, "--db", "mysql://x"],
            "--db mysql://x:",
            id="bad-db",
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", GENERATED, "--upstream-ca", "/nonexistent"],
            "upstream TLS: ",
            id="missing-ca",
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", GENERATED, "--upstream-cert", "c.pem"],
            "--upstream-cert needs --upstream-key",
            id="cert-without-key",
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", f"{GENERATED}.google"],
            "holds no protoc-gen-restmon modules",
            id="generated-without-routes",
        ),
        pytest.param(
            ["--upstream", "localhost:1", "--package", GENERATED, "--docs-path", "/v1/shelves"],
            "/v1/shelves: the route GET /v1/shelves",
            id="docs-on-an-api-route",
        ),
    ],
)
def test_serve_refuses_bad_arguments_with_status_2(
    bookstore_pb: ModuleType,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In process (the checks come before any server starts): `main`, as the script calls it."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # --path and the cwd are added to it
    with pytest.raises(SystemExit) as exited:
        main(["serve", *args, "--path", str(output_root(bookstore_pb))])
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("restmon serve: ")
    assert message in stderr
