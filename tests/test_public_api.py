"""The public runtime API as a user's type checker and interpreter see it.

`protoc_gen_restmon.runtime` loads its names on first use (generated modules import it and must stay
cheap to import), yet a user's `mypy --strict` must see the real classes, not `Any`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import protoc_gen_restmon
import protoc_gen_restmon.runtime as runtime

USER_PROGRAM = textwrap.dedent(
    """
    from protoc_gen_restmon.runtime import AdminApp, Gateway, GatewayOptions, Monitor, with_admin

    def build(monitor: Monitor) -> None:
        gateway = Gateway(services=[], options=GatewayOptions(), monitor=monitor)
        admin = AdminApp(monitor)
        app = with_admin(gateway, admin)
        reveal_type(gateway)
        reveal_type(monitor)
        reveal_type(admin)
        reveal_type(app)
        gateway.no_such_attribute  # an error only where Gateway is a real class
    """
)


@pytest.mark.slow
def test_mypy_strict_sees_the_real_classes(tmp_path: Path) -> None:
    program = tmp_path / "user.py"
    program.write_text(USER_PROGRAM)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "c"),
            str(program),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert 'Revealed type is "protoc_gen_restmon.runtime.gateway.app.Gateway"' in out, out
    assert 'Revealed type is "protoc_gen_restmon.runtime.monitor.monitor.Monitor"' in out, out
    assert 'Revealed type is "protoc_gen_restmon.runtime.admin.app.AdminApp"' in out, out
    assert '"Gateway" has no attribute "no_such_attribute"' in out, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out  # the deliberate one: no Any, no missing stubs


def test_every_public_name_resolves_to_its_class() -> None:
    for name in runtime.__all__:
        value = getattr(runtime, name)
        assert getattr(value, "__name__", name) == name, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        runtime.no_such_name  # noqa: B018


def test_the_package_is_marked_typed() -> None:
    assert (Path(protoc_gen_restmon.__file__).parent / "py.typed").is_file()


def test_importing_the_runtime_package_loads_no_gateway() -> None:
    code = (
        "import sys, protoc_gen_restmon.runtime, protoc_gen_restmon.runtime.specs;"
        "print(sorted(m for m in sys.modules if m.startswith('protoc_gen_restmon.runtime.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['protoc_gen_restmon.runtime.specs']"


def test_the_examples_import_only_public_names() -> None:
    examples = Path(protoc_gen_restmon.__file__).resolve().parents[1] / "examples"
    used = set()
    for source in sorted(examples.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
                assert not any(n.startswith("protoc_gen_restmon") for n in names), source
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "protoc_gen_restmon"
            ):
                assert node.module == "protoc_gen_restmon.runtime", (source.name, node.module)
                used.update(alias.name for alias in node.names)
    assert used and used <= set(runtime.__all__)
