"""googleapis in one protoc run, default options: the duplicate routes left (issue 13 item 8).

Before duplicates were scoped, that run failed on 453 pairs, nearly all from unrelated APIs on
different hosts (automl vs aiplatform, apihub vs apigateway). Now a pair is an error only within
one package or across packages sharing a `google.api.default_host`. What remains, pinned here by
name, is real: one gateway serving the package (or the host) would refuse the pair too.

- bigquery storage: ReadRows and SplitReadStream (and BigQueryWrite's methods with AppendRows,
  CreateWriteStream with CreateReadSession) bind one shape within one package;
- discoveryengine v1/v1alpha/v1beta: SessionService repeats ConversationalSearchService's session
  routes (each with three bindings) in the same package;
- compute v1small: a subset of compute v1 on the same host, compute.googleapis.com.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.protoc_tools import REPO, protoc
from tests.support.router_tools import corpus_http_files

CORPUS = REPO / "corpus" / "google-proto-files"

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`"),
]

_DUPLICATE = re.compile(r": ([\w.]+): duplicate route [A-Z]+ .* of ([\w.]+) \(")

BQ = "google.cloud.bigquery.storage"
SESSIONS = ("CreateSession", "DeleteSession", "UpdateSession", "GetSession", "ListSessions")


def remaining() -> Counter[tuple[str, str]]:
    """(method refused, the method it collides with) -> how many of its bindings collide."""
    pairs: Counter[tuple[str, str]] = Counter()
    for version in ("v1", "v1beta2"):
        read, write = f"{BQ}.{version}.BigQueryRead", f"{BQ}.{version}.BigQueryWrite"
        pairs[(f"{read}.SplitReadStream", f"{read}.ReadRows")] = 1
        pairs[(f"{write}.CreateWriteStream", f"{read}.CreateReadSession")] = 1
        for method in ("FinalizeWriteStream", "FlushRows", "GetWriteStream"):
            pairs[(f"{write}.{method}", f"{write}.AppendRows")] = 1
    storage = f"{BQ}.v1beta1.BigQueryStorage"
    pairs[(f"{storage}.SplitReadStream", f"{storage}.ReadRows")] = 1
    for version in ("v1", "v1alpha", "v1beta"):
        package = f"google.cloud.discoveryengine.{version}"
        for method in SESSIONS:
            key = (
                f"{package}.SessionService.{method}",
                f"{package}.ConversationalSearchService.{method}",
            )
            pairs[key] = 3
    for method in (
        "Addresses.AggregatedList",
        "Addresses.Delete",
        "Addresses.Insert",
        "Addresses.List",
        "RegionOperations.Get",
    ):
        pairs[(f"google.cloud.compute.v1small.{method}", f"google.cloud.compute.v1.{method}")] = 1
    return pairs


def test_one_run_over_googleapis_refuses_only_pairs_one_gateway_would_serve(
    tmp_path: Path,
) -> None:
    files = corpus_http_files()
    plugin = Path(sys.executable).with_name("protoc-gen-restmon")
    result = protoc(
        [
            f"-I{CORPUS}",
            f"--plugin=protoc-gen-restmon={plugin}",
            f"--restmon_out={tmp_path}",
            "--restmon_opt=outputs=routes",
            *files,
        ]
    )
    refused = Counter((m.group(1), m.group(2)) for m in _DUPLICATE.finditer(result.stderr))
    assert result.returncode != 0
    assert refused == remaining()
    assert sum(refused.values()) == 61
    # Nothing else stops the run: every error line of ours is one of those duplicates.
    ours = [line for line in result.stderr.splitlines() if line.startswith("--restmon_out:")]
    assert len(ours) == 1 and "duplicate route" in ours[0]
