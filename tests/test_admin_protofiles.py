"""The proto-file endpoints over real HTTP: listing, single files, the zip (compiled by a real
protoc), generation into proto_dir, and paths that try to leave it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from protoc_gen_restmon.runtime.admin.protofiles import ProtoFiles
from tests.support.admin_fixtures import AdminStack
from tests.support.protoc_tools import any_protoc

BASE = "/cfg/grpc/proto-files"


@pytest.fixture(scope="module")
def expected(admin_stack: AdminStack) -> ProtoFiles:
    """The same files, built directly: what the endpoints must serve."""
    return ProtoFiles([admin_stack.pb])


def test_listing(admin_stack: AdminStack, expected: ProtoFiles) -> None:
    with admin_stack.admin() as client:
        answer = client.get(f"{BASE}/").json()
    assert answer["proto_dir"] == str(admin_stack.proto_dir)
    assert answer["total_files"] == len(answer["files"]) == len(expected.files)
    assert {f["app_label"]: f["filename"] for f in answer["files"]} == {
        label: file.filename for label, file in expected.files.items()
    }
    for entry in answer["files"]:
        assert set(entry) == {
            "app_label",
            "filename",
            "size_bytes",
            "package",
            "messages_count",
            "services_count",
            "created_at",
            "modified_at",
        }
        assert isinstance(entry["created_at"], float) and entry["modified_at"] > 0


def test_every_listed_file_downloads_as_text(admin_stack: AdminStack, expected: ProtoFiles) -> None:
    with admin_stack.admin() as client:
        listing = client.get(f"{BASE}/").json()["files"]
        for entry in listing:
            response = client.get(f"{BASE}/{entry['app_label']}/")
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert len(response.content) == entry["size_bytes"]
            assert response.text == expected.files[entry["app_label"]].text


def test_download_all_is_a_zip_protoc_compiles(admin_stack: AdminStack, tmp_path: Path) -> None:
    with admin_stack.admin() as client:
        response = client.get(f"{BASE}/download-all/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="protos.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path / "tree")
        names = archive.namelist()
    assert "bookstore/v1/bookstore.proto" in names and "google/api/http.proto" in names
    result = subprocess.run(
        [
            *any_protoc(),
            f"-I{tmp_path / 'tree'}",
            f"--descriptor_set_out={tmp_path / 'out.pb'}",
            *names,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def generate(stack: AdminStack, body: Any) -> dict[str, Any]:
    with stack.admin() as client:
        response = client.post(f"{BASE}/generate/", content=json.dumps(body))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["proto_dir"] == str(stack.proto_dir)
    return answer


def test_generate_writes_skips_and_forces(admin_stack: AdminStack, expected: ProtoFiles) -> None:
    every = sorted(expected.files)
    first = generate(admin_stack, {})
    assert (first["status"], sorted(first["generated"]), first["errors"]) == ("success", every, [])
    assert first["generated_count"] == len(every)
    for file in expected.files.values():
        assert (admin_stack.proto_dir / file.filename).read_text() == file.text
    target = admin_stack.proto_dir / "common/v1/money.proto"
    os.utime(target, (1_000_000, 1_000_000))
    again = generate(admin_stack, {"force": False})
    assert (again["generated"], again["generated_count"]) == ([], 0)
    assert target.stat().st_mtime == 1_000_000
    forced = generate(admin_stack, {"apps": ["common.v1.money"], "force": True})
    assert forced["generated"] == ["common.v1.money"]
    assert target.stat().st_mtime > 1_000_000
    with admin_stack.admin() as client:
        listing = client.get(f"{BASE}/").json()["files"]
    [entry] = [f for f in listing if f["app_label"] == "common.v1.money"]
    assert entry["modified_at"] == target.stat().st_mtime


def test_generate_reports_unknown_labels(admin_stack: AdminStack) -> None:
    answer = generate(admin_stack, {"apps": ["nope", "../../etc/passwd"]})
    assert answer["status"] == "error" and answer["generated"] == []
    assert [e["app_label"] for e in answer["errors"]] == ["nope", "../../etc/passwd"]
    assert not (admin_stack.proto_dir.parent / "etc").exists()


BAD_BODIES = [
    pytest.param(b"{not json", "invalid JSON", id="not-json"),
    pytest.param(b"[]", "expected a JSON object", id="array"),
    pytest.param(b'{"apps": "common.v1.money"}', "apps:", id="apps-string"),
    pytest.param(b'{"apps": [1]}', "apps:", id="apps-numbers"),
    pytest.param(b'{"force": "yes"}', "force:", id="force-string"),
    pytest.param(b'{"app": []}', "unknown fields", id="unknown-field"),
    pytest.param(b"\xff\xfe", "invalid JSON", id="not-utf8"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_generate_bad_bodies_are_400(admin_stack: AdminStack, body: bytes, message: str) -> None:
    with admin_stack.admin() as client:
        response = client.post(f"{BASE}/generate/", content=body)
    assert response.status_code == 400
    assert response.json()["code"] == 3 and message in response.json()["message"]


TRAVERSALS = [
    pytest.param(f"{BASE}/..%2F..%2Fetc%2Fpasswd/", id="encoded-slashes"),
    pytest.param(f"{BASE}/%2Fetc%2Fpasswd/", id="encoded-absolute"),
    pytest.param(f"{BASE}/%2e%2e%2f%2e%2e%2fetc%2fpasswd", id="encoded-dots"),
    pytest.param(f"{BASE}/bookstore%2Fv1%2Fbookstore.proto/", id="file-path-not-label"),
    pytest.param(f"{BASE}/bookstore.v1.bookstore/../../../etc/passwd", id="extra-segments"),
    pytest.param(f"{BASE}/bookstore.v1.bookstore%00/", id="nul"),
    pytest.param(f"{BASE}/%ff/", id="bad-utf8"),
    pytest.param(f"{BASE}//etc/passwd/", id="empty-segment"),
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_are_404(admin_stack: AdminStack, path: str) -> None:
    with admin_stack.admin() as client:
        response = client.get(path)
    assert response.status_code == 404, response.text
    assert "root:" not in response.text


WRONG_METHODS = [
    pytest.param("GET", f"{BASE}/generate/", "POST", id="get-generate"),
    pytest.param("POST", f"{BASE}/", "GET", id="post-list"),
    pytest.param("PUT", f"{BASE}/bookstore.v1.bookstore/", "GET", id="put-file"),
    pytest.param("DELETE", f"{BASE}/download-all/", "GET", id="delete-zip"),
    pytest.param("POST", "/api/grpc/monitor/requests/", "GET", id="post-requests"),
]


@pytest.mark.parametrize(("method", "path", "allow"), WRONG_METHODS)
def test_wrong_methods_are_405(admin_stack: AdminStack, method: str, path: str, allow: str) -> None:
    with admin_stack.admin() as client:
        response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
