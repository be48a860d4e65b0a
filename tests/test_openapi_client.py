"""A real consumer of the served document: `openapi-python-client` generates a Python client
from the bookstore gateway's `/openapi.json` (fetched over HTTP from uvicorn), and that client,
without a hand edit, calls the running gateway: a GET with path variables, a POST with a body,
a PATCH, a List with query parameters, and an error answered as a google.rpc.Status.

The generator runs as its console script, without post hooks (they would run ruff on the
output; the code is the same without them). It takes a few seconds: marked slow.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway.app import Gateway
from tests.support.servers import uvicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "restmon_bookstore_client"
CONFIG = {"post_hooks": [], "project_name_override": PACKAGE, "package_name_override": PACKAGE}


@pytest.fixture(scope="module", name="base")
def fixture_base(bookstore_pb: ModuleType) -> Iterator[str]:
    with uvicorn_server(Gateway(services=[make_service(bookstore_pb)])) as base:
        yield base


def duplicate_titles(document: dict[str, Any]) -> list[str]:
    """Schema titles shared by two components: openapi-python-client names its model classes
    after titles and refuses a second model of one name."""
    schemas = document.get("components", {}).get("schemas", {})
    titles = Counter(schema.get("title") for schema in schemas.values() if "title" in schema)
    return sorted(title for title, count in titles.items() if count > 1)


@pytest.fixture(scope="module", name="client_package")
def fixture_client_package(
    base: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    """The client generated from the served document, imported."""
    if not GENERATOR.exists():
        pytest.skip("openapi-python-client is not installed (pip install -e '.[dev]')")
    document = httpx.get(f"{base}/openapi.json").json()
    assert duplicate_titles(document) == []  # or openapi-python-client drops the models
    root = tmp_path_factory.mktemp("client")
    (root / "openapi.json").write_text(json.dumps(document))
    (root / "config.json").write_text(json.dumps(CONFIG))
    result = subprocess.run(
        [
            *(str(GENERATOR), "generate", "--path", "openapi.json", "--config", "config.json"),
            *("--meta", "none", "--output-path", PACKAGE),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(name="api")
def fixture_api(client_package: ModuleType, base: str) -> Iterator[Any]:
    """The generated client's `Client`, on the running gateway."""
    client = client_package.Client(base_url=base)
    with client:
        yield client


def operation(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.bookstore_v_1_bookstore_service.{name}")


def models(package: ModuleType) -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


def test_get_with_path_variables(client_package: ModuleType, api: Any) -> None:
    get_book = operation(client_package, "bookstore_service_get_book")
    answer = get_book.sync_detailed("fiction", "dune", client=api)
    assert answer.status_code == 200, answer.content
    book = answer.parsed
    assert isinstance(book, models(client_package).Book)
    assert (book.name, book.title) == ("shelves/fiction/books/dune", "Dune")
    assert book.copies_sold == "20000000"  # int64 is a string in proto3 JSON


def test_post_with_a_body(client_package: ModuleType, api: Any) -> None:
    create_shelf = operation(client_package, "bookstore_service_create_shelf")
    shelf = models(client_package).ShelfInput(display_name="Science")
    answer = create_shelf.sync_detailed(client=api, body=shelf, shelf_id="science")
    assert answer.status_code == 200, answer.content
    assert answer.parsed.name == "shelves/science"
    assert answer.parsed.display_name == "Science"


def test_patch(client_package: ModuleType, api: Any) -> None:
    update_book = operation(client_package, "bookstore_service_update_book")
    # The body is the book without `name`, which the URL gives: an inline object of its own.
    book = models(client_package).BookstoreServiceUpdateBookBodyType0(title="Dune (1965)")
    answer = update_book.sync_detailed(
        "fiction", "dune", client=api, body=book, update_mask="title"
    )
    assert answer.status_code == 200, answer.content
    assert answer.parsed.title == "Dune (1965)"
    assert answer.parsed.authors == ["authors/herbert"]  # not in the mask: kept


def test_list_with_query_parameters(client_package: ModuleType, api: Any) -> None:
    list_books = operation(client_package, "bookstore_service_list_books")
    genre = models(client_package).BookstoreServiceListBooksGenresItemType0  # an enum
    science = list_books.sync_detailed(
        "fiction", client=api, genres=[genre.GENRE_SCIENCE_FICTION], page_page_size=5
    )
    assert science.status_code == 200, science.content
    assert [book.name for book in science.parsed.books] == ["shelves/fiction/books/dune"]
    poetry = list_books.sync_detailed("fiction", client=api, genres=[genre.GENRE_POETRY])
    assert poetry.status_code == 200, poetry.content
    assert poetry.parsed.books == []


def test_error_is_a_status(client_package: ModuleType, api: Any) -> None:
    get_shelf = operation(client_package, "bookstore_service_get_shelf")
    answer = get_shelf.sync_detailed("nowhere", client=api)
    assert answer.status_code == 404
    status = answer.parsed
    assert isinstance(status, models(client_package).Status)
    assert status.code == 5  # NOT_FOUND
    assert "nowhere" in status.message
