"""The repository's text refers only to itself: no design text outside the checkout, no link or
absolute path that leaves it, and every `docs/x.md §N` that code cites is a heading of that doc.

The checks run over every file of the checkout (tracked, or new and not ignored; not corpus/ nor
.venv*), and over made-up text that each check must refuse.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.doc_links import (
    DESIGN_DIR,
    DOCS,
    ROOT,
    Problem,
    absolute_paths,
    citations,
    design_references,
    heading_anchors,
    markdown_links,
    numbered_sections,
    outside_prefixes,
    read_text,
    repository_files,
    unqualified_citations,
)

# The checker and its tests hold, on purpose, the text the checks refuse.
SELF = frozenset({Path(__file__).resolve(), ROOT / "tests" / "support" / "doc_links.py"})


@pytest.fixture(scope="module")
def texts() -> list[tuple[Path, str, str]]:
    """(path, path relative to the root, text) of every text file of the checkout."""
    found = []
    for path in repository_files():
        text = read_text(path)
        if text is not None and path not in SELF:
            found.append((path, str(path.relative_to(ROOT)), text))
    return found


def _report(problems: list[Problem]) -> str:
    return "\n".join(map(str, problems))


# --- The checkout ---


def test_the_checkout_is_read(texts: list[tuple[Path, str, str]]) -> None:
    names = {relative for _, relative, _ in texts}
    assert {
        "README.md",
        "docs/http-transcoding.md",
        "protoc_gen_restmon/runtime/router.py",
    } <= names
    assert not any(name.startswith(("corpus/", ".venv")) for name in names)


def test_nothing_refers_to_the_design_texts(texts: list[tuple[Path, str, str]]) -> None:
    problems = [p for _, relative, text in texts for p in design_references(relative, text)]
    assert not problems, _report(problems)


def test_no_absolute_path_outside_the_checkout(texts: list[tuple[Path, str, str]]) -> None:
    prefixes = outside_prefixes()
    problems = [p for _, relative, text in texts for p in absolute_paths(relative, text, prefixes)]
    assert not problems, _report(problems)


def test_markdown_links_stay_inside_and_lead_somewhere(
    texts: list[tuple[Path, str, str]],
) -> None:
    problems = [
        p for path, _, text in texts if path.suffix == ".md" for p in markdown_links(path, text)
    ]
    assert not problems, _report(problems)


def test_cited_sections_exist(texts: list[tuple[Path, str, str]]) -> None:
    problems = [p for _, relative, text in texts for p in citations(relative, text)]
    assert not problems, _report(problems)


def test_code_names_docs_with_their_directory(texts: list[tuple[Path, str, str]]) -> None:
    problems = [
        p
        for path, relative, text in texts
        if path.suffix == ".py"
        for p in unqualified_citations(relative, text)
    ]
    assert not problems, _report(problems)


def test_the_spec_keeps_the_numbering_code_cites() -> None:
    transcoding = numbered_sections((DOCS / "http-transcoding.md").read_text(encoding="utf-8"))
    assert transcoding == frozenset(range(1, 8))
    monitoring = numbered_sections((DOCS / "monitoring-api.md").read_text(encoding="utf-8"))
    assert monitoring == frozenset(range(1, 6))


# --- Each check refuses what it must ---


def test_design_reference_is_found() -> None:
    text = f"see\n`../{DESIGN_DIR}/http-transcoding.md`\n"
    assert [p.line for p in design_references("x.md", text)] == [2]


def test_absolute_path_is_found() -> None:
    prefixes = ("/work/",)
    assert [p.line for p in absolute_paths("x.md", "a\nREPO=/work/main\n", prefixes)] == [2]
    assert absolute_paths("x.md", "GET /v1/work/items", prefixes) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[a](../../outside.md)", "leads outside the checkout", id="parent"),
        pytest.param("[a](/etc/passwd)", "is an absolute path", id="absolute"),
        pytest.param("[a](missing.md)", "no such file", id="missing"),
        pytest.param("[a](#nowhere)", "no such heading", id="own-anchor"),
        pytest.param("[a](http-transcoding.md#9-nothing)", "no heading", id="anchor"),
        pytest.param("[a]: ../../elsewhere", "leads outside the checkout", id="reference"),
        pytest.param("read `../../secret.txt`", "is outside the checkout", id="code-span"),
    ],
)
def test_bad_markdown_link_is_found(text: str, expected: str) -> None:
    problems = markdown_links(DOCS / "made-up.md", f"# Title\n\n{text}\n")
    assert len(problems) == 1 and expected in problems[0].why, problems
    assert problems[0].line == 3


@pytest.mark.parametrize(
    "text",
    [
        "[a](http-transcoding.md#5-errors)",
        "[a](https://example.com/../x)",
        "[a](#title)",
        "```\n[a](../../x)\n```",
        "`d[k](../x)`",
    ],
)
def test_good_markdown_link_passes(text: str) -> None:
    assert markdown_links(DOCS / "made-up.md", f"# Title\n\n{text}\n") == []


def test_missing_section_is_found() -> None:
    text = '"""Matching (docs/http-transcoding.md §2); see also http-transcoding.md §42."""'
    problems = citations("x.py", text)
    assert [p.why for p in problems] == [
        "cites docs/http-transcoding.md §42, which has no heading '42.'"
    ]


def test_missing_doc_is_found() -> None:
    problems = citations("x.py", "# docs/nowhere.md §1\n")
    assert [p.why for p in problems] == [
        "cites docs/nowhere.md §1, which has no heading '1.'",
        "docs/nowhere.md does not exist",
    ]


def test_unqualified_doc_name_in_code_is_found() -> None:
    text = "# http-transcoding.md §3\n# docs/http-transcoding.md §3\n"
    assert [p.line for p in unqualified_citations("x.py", text)] == [1]


def test_heading_anchors_are_githubs() -> None:
    text = "# protoc-gen-restmon\n## 1. Path templates, and `rules`\n```\n# not a heading\n```\n"
    assert heading_anchors(text) == {"protoc-gen-restmon", "1-path-templates-and-rules"}
