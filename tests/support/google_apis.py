"""Googleapis services from the corpus, generated for real, for the Google client tests.

`generated_api(root, name, package, files, service_yaml)` runs protoc with our plugin over corpus
protos (e.g. `google/cloud/tasks/v2/*.proto`) plus the Locations mixin's
`google/cloud/location/locations.proto`, with the service's YAML (googleapis' `cloudtasks_v2.yaml`,
written by the test) as `http_config`, into `root/name`, and imports the packages.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tests.support.protoc_tools import REPO, protoc, restmon_plugin

CORPUS = REPO / "corpus" / "google-proto-files"
LOCATIONS_PROTO = "google/cloud/location/locations.proto"


@dataclass(frozen=True)
class GeneratedApi:
    """One googleapis service and the Locations mixin, generated into `root/<name>`."""

    service: ModuleType  # e.g. <name>.google.cloud.tasks.v2
    locations: ModuleType  # <name>.google.cloud.location

    @property
    def packages(self) -> tuple[ModuleType, ModuleType]:
        return self.service, self.locations


@contextlib.contextmanager
def generated_api(
    root: Path, name: str, package: str, files: Sequence[str], service_yaml: str
) -> Iterator[GeneratedApi]:
    """`files` (corpus paths) and the Locations proto generated into root/name, imported.

    `package` is the service's proto package ("google.cloud.tasks.v2"). Afterwards root leaves
    sys.path and every `name` module leaves sys.modules.
    """
    config = root / f"{name}.yaml"
    config.write_text(service_yaml)
    out = root / name
    _generate(out, [*files, LOCATIONS_PROTO], f"http_config={config}")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield GeneratedApi(
            service=importlib.import_module(f"{name}.{package}"),
            locations=importlib.import_module(f"{name}.google.cloud.location"),
        )
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m.split(".")[0] == name]:
            del sys.modules[module]


def _generate(out: Path, files: Sequence[str], options: str) -> None:
    """protoc + protoc-gen-restmon (all three outputs) into `out`, a regular package (betterproto's
    packages import each other relatively)."""
    out.mkdir(parents=True)
    (out / "__init__.py").touch()
    result = protoc(
        [
            f"-I{CORPUS}",
            f"--plugin=protoc-gen-restmon={restmon_plugin()}",
            f"--restmon_out={out}",
            f"--restmon_opt={options}",
            *files,
        ]
    )
    if result.returncode:
        raise AssertionError(f"protoc failed on {files}: {result.stderr}")
