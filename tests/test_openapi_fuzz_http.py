"""schemathesis (4.x) against live gateways over real HTTP (`schemathesis.openapi.from_url`),
issue 14's proof beside tests/test_openapi_fuzz.py's in-process run: each reads the document the
server serves at /openapi.json and fuzzes every operation, positive and negative, with the same
checks, left-outs and real ids (tests/support/fuzz.py).

- `demo`: `make demo`'s server (`python -m examples.serve`: grpclib and uvicorn in one process,
  the monitor and the admin API mounted beside the routes), on free ports.
- `proxy`: `restmon serve` in proxy mode (grpcio to the upstream) in front of a real grpclib
  server hosting the example Bookstore.
- `st run`, schemathesis' command line, against the demo with every phase (examples, coverage,
  fuzzing, stateful), the same checks and hooks (tests/support/fuzz_hooks.py): exit 0, and every
  operation tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.generation import GenerationMode

from examples.bookstore import make_service
from tests.support.fuzz import (
    CHECKS,
    CLI_LEFT_OUT,
    EXAMPLES,
    FUZZED,
    LEFT_OUT,
    NEGATIVE,
    POSITIVE,
    TIMEOUT,
    fuzz,
    install,
    no_negative_fractions,
    operations,
    seed,
)
from tests.support.gateway_fixtures import GENERATED
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, REPO
from tests.support.proxy_fixtures import running_upstream
from tests.support.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]

BIN = Path(sys.executable).parent  # restmon and st, the installed console scripts


def serving(command: list[str], url: str) -> Iterator[str]:
    """`command` as a process until the fixture ends; yields `url` once /openapi.json answers."""
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_document(process, url)
        yield url
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
        assert "Traceback" not in stderr, stderr


def wait_for_document(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} served no document")


@pytest.fixture(scope="module", name="demo_root")
def fixture_demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example protos generated into `<root>/gen`, as `make demo` does."""
    root = tmp_path_factory.mktemp("demo")
    files = [str(PROTOS / name) for name in EXAMPLE_FILES]
    generate = [str(BIN / "restmon"), "generate", "-I", str(PROTOS), "-o", str(root / "gen")]
    subprocess.run([*generate, *files], check=True, capture_output=True)
    return root


def demo(root: Path, name: str) -> Iterator[str]:
    """`python -m examples.serve` on `root`, recording into `<root>/<name>.db`."""
    grpc_port, http_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "examples.serve",
        str(root),
        "--db",
        f"sqlite:///{root}/{name}.db",
    ]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    yield from serving(command, f"http://127.0.0.1:{http_port}")


@pytest.fixture(scope="module", name="demo_url")
def fixture_demo_url(demo_root: Path) -> Iterator[str]:
    yield from demo(demo_root, "fuzz")


@pytest.fixture(name="cli_demo_url")
def fixture_cli_demo_url(demo_root: Path) -> Iterator[str]:
    """A demo server of its own: `st run` also puts ids it saw in answers into the paths of
    DELETE and PUT, and may delete the seeded shelf the other tests' real ids name."""
    yield from demo(demo_root, "cli")


@pytest.fixture(scope="module", name="proxy_url")
def fixture_proxy_url(bookstore_pb: ModuleType) -> Iterator[str]:
    with running_upstream(make_service(bookstore_pb), served_by=False) as upstream:
        port = free_port()
        root = Path(bookstore_pb.__file__ or "").resolve().parents[3]  # holds restmon_gateway_gen
        command = [str(BIN / "restmon"), "serve", "--upstream", upstream.address]
        command += ["--package", GENERATED, "--path", str(root), "--port", str(port)]
        yield from serving([*command, "--log-level", "warning"], f"http://127.0.0.1:{port}")


def live_schema(url: str) -> Any:
    """The document `url` serves, with the hooks and the seed of `fuzz.install`."""
    return install(schemathesis.openapi.from_url(f"{url}/openapi.json"))


@pytest.fixture(scope="module", name="schemas")
def fixture_schemas(demo_url: str, proxy_url: str) -> dict[str, Any]:
    proxied = live_schema(proxy_url)
    proxied.hook("filter_case")(no_negative_fractions)  # the upstream is grpclib + betterproto
    return {"demo": live_schema(demo_url), "proxy": proxied}


@pytest.mark.parametrize("target", ["demo", "proxy"])
def test_every_operation_is_served(schemas: dict[str, Any], target: str) -> None:
    assert operations(schemas[target]) == set(FUZZED)


@pytest.mark.parametrize("target", ["demo", "proxy"])
@pytest.mark.parametrize("mode", [POSITIVE, NEGATIVE], ids=lambda mode: mode.value)
@pytest.mark.parametrize(("method", "path"), FUZZED)
def test_operation_keeps_its_document_over_http(
    schemas: dict[str, Any], target: str, method: str, path: str, mode: GenerationMode
) -> None:
    if (method, path, mode) in LEFT_OUT:
        pytest.skip(LEFT_OUT[method, path, mode])
    statuses = fuzz(schemas[target], method, path, mode)
    if mode is POSITIVE:  # real_ids: some valid requests reach a real resource
        assert any(200 <= status < 300 for status in statuses), statuses


def cli_config(path: Path) -> Path:
    """schemathesis.toml: the hooks module, `CHECKS` alone (ours too: the hooks module registers
    it) and `CLI_LEFT_OUT` as per-operation switches (`--checks` would override those)."""
    lines = ['hooks = "tests.support.fuzz_hooks"', "", "[checks]", "enabled = false"]
    lines += [f"{check.__name__}.enabled = true" for check in CHECKS]
    for (method, template), checks in CLI_LEFT_OUT.items():
        lines += ["", "[[operations]]", f'include-method = "{method}"']
        lines.append(f'include-path = "{template}"')
        lines += [f"checks.{check}.enabled = false  # {why}" for check, why in checks.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_st_run_passes_on_every_operation(cli_demo_url: str, tmp_path: Path) -> None:
    seed(schemathesis.openapi.from_url(f"{cli_demo_url}/openapi.json"))
    report = tmp_path / "report.json"
    command = [str(BIN / "st"), "--config-file", str(cli_config(tmp_path / "schemathesis.toml"))]
    command += ["run", f"{cli_demo_url}/openapi.json"]
    command += ["--max-examples", str(EXAMPLES), "--seed", "14", "--workers", "1"]
    command += ["--generation-database", "none", "--no-color"]
    command += ["--report", "json", "--report-json-path", str(report)]
    # From tmp_path: st keeps a cache in ./.schemathesis; the hooks module comes from REPO.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    summary = json.loads(report.read_text())
    assert summary["operations"]["tested"] == len(FUZZED) == summary["operations"]["total"]
    assert summary["failures"] == [] and summary["errors"] == []
