"""`restmon openapi MODULE… [-o FILE] [--yaml]`: the document a gateway serving the packages
serves, written as JSON or YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from protoc_gen_restmon.cli import main
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
from protoc_gen_restmon.runtime.openapi.serialize import dump_json
from tests.support.gateway_fixtures import GENERATED, call

RESTMON = str(Path(sys.executable).with_name("restmon"))


def output_root(pb: ModuleType) -> Path:
    return Path(pb.__file__ or "").resolve().parents[3]


@pytest.fixture(name="in_root")
def fixture_in_root(bookstore_pb: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the directory holding the generated package (as `restmon routes` is)."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command puts the cwd on it
    root = output_root(bookstore_pb)
    monkeypatch.chdir(root)
    return root


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0)


def test_openapi_writes_what_the_gateway_serves(
    bookstore_pb: ModuleType, in_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["openapi", f"{GENERATED}.bookstore.v1"]) == 0
    written = capsys.readouterr().out
    served = call(Gateway(upstream="127.0.0.1:9", packages=[bookstore_pb]), "GET", "/openapi.json")
    document = served.json()
    document.pop("servers")
    assert json.loads(written) == document
    assert written == dump_json(document)  # deterministic text: the serializer's


def test_openapi_of_the_output_root_is_that_of_every_package_below_it(
    bookstore_pb: ModuleType, in_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["openapi", GENERATED]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert run(["openapi", f"{GENERATED}.bookstore.v1"]) == 0
    assert json.loads(capsys.readouterr().out) == whole  # the only package with services


def test_openapi_yaml_to_a_file(in_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "bookstore.yaml"
    assert run(["openapi", GENERATED, "--yaml", "-o", str(target)]) == 0
    as_json = tmp_path / "bookstore.json"
    assert run(["openapi", GENERATED, "--output", str(as_json)]) == 0
    assert yaml.safe_load(target.read_text()) == json.loads(as_json.read_text())


def test_openapi_documents_the_error_format(
    bookstore_pb: ModuleType, in_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["openapi", GENERATED, "--error-format", "google"]) == 0
    written = json.loads(capsys.readouterr().out)
    gateway = Gateway(
        upstream="127.0.0.1:9",
        packages=[bookstore_pb],
        options=GatewayOptions(error_format="google"),
    )
    assert written == gateway.api.document()


BAD = [
    pytest.param(["json"], "json holds no protoc-gen-restmon modules", id="not-generated"),
    pytest.param(["no_such_package_x"], "cannot import no_such_package_x", id="missing"),
]


@pytest.mark.parametrize(("modules", "message"), BAD)
def test_openapi_refuses_what_is_not_generated(
    in_root: Path, modules: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["openapi", *modules]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("restmon openapi: ")
    assert message in stderr


def test_openapi_console_script(in_root: Path) -> None:
    result = subprocess.run(
        [RESTMON, "openapi", GENERATED], cwd=in_root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["openapi"] == "3.1.0"
