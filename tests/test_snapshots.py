"""Golden outputs: every generated module of the example protos, byte for byte (syrupy)."""

from __future__ import annotations

import black
import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from protoc_gen_restmon.plugin.main import run


class PythonSnapshot(SingleFileSnapshotExtension):
    """One golden file per generated module, stored as text so diffs stay readable."""

    _write_mode = WriteMode.TEXT
    file_extension = "py.txt"


EXPECTED_MODULES = [
    "bookstore/v1/__init__.py",
    "bookstore/v1/_restmon_routes.py",
    "bookstore/v1/_restmon_monitor.py",
    "common/v1/__init__.py",
    "common/v1/_restmon_routes.py",
    "common/v1/_restmon_monitor.py",
    "google/api/__init__.py",
]


@pytest.mark.parametrize("name", EXPECTED_MODULES)
def test_generated_module_matches_golden_output(
    example_files: dict[str, str], name: str, snapshot: SnapshotAssertion
) -> None:
    assert example_files[name] == snapshot(extension_class=PythonSnapshot)


def test_every_package_directory_is_a_package(example_files: dict[str, str]) -> None:
    directories = {name.rsplit("/", 1)[0] for name in example_files if "/" in name}
    for directory in directories:
        parts = directory.split("/")
        for depth in range(1, len(parts) + 1):
            assert "/".join(parts[:depth]) + "/__init__.py" in example_files


def test_two_runs_give_identical_bytes(example_request: bytes) -> None:
    first, second = run(example_request), run(example_request)
    assert first.SerializeToString() == second.SerializeToString()


@pytest.mark.parametrize("name", [n for n in EXPECTED_MODULES if "_restmon_" in n])
def test_our_modules_are_black_formatted(example_files: dict[str, str], name: str) -> None:
    source = example_files[name]
    assert black.format_str(source, mode=black.Mode()) == source
