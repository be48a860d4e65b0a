"""What the repository's text refers to: links, paths outside the checkout, `docs/x.md §N`.

Pure functions over (path, text) pairs, so that tests/test_docs.py can run them over every file
of the checkout and over made-up text that must fail.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# Not the repository's: the googleapis corpus (a symlink) and virtual environments.
_SKIPPED_TOP = ("corpus", ".git")
_SKIPPED_DIRS = frozenset(
    {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "node_modules"}
)
# Written in two pieces so that this file does not match what it looks for.
DESIGN_DIR = "shared" + "/design"

# `[text](target)` and `[label]: target`, outside code.
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_FENCE = re.compile(r"^([ \t]*)(```|~~~).*?^\1\2[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# `docs/http-transcoding.md §3`, `http-transcoding.md §3`, `[monitoring-api.md §4](…)`.
_CITATION = re.compile(r"(?<![\w./-])((?:docs/)?[\w-]+\.md)\]?\s*§\s*(\d+)")
_DOCS_PATH = re.compile(r"(?<![\w./-])docs/[\w-]+\.md")
_NUMBERED_HEADING = re.compile(r"^#{1,6}\s+(\d+)\.\s", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # relative to the root
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}"


def repository_files(root: Path = ROOT) -> list[Path]:
    """The checkout's files (tracked, or new and not ignored), without corpus/ and .venv*."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout (an sdist)
        names = [str(path.relative_to(root)) for path in _walk(root)]
    return sorted(root / name for name in names if _kept(Path(name)) and (root / name).is_file())


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in _SKIPPED_DIRS]
        for name in files:
            yield Path(directory) / name


def _kept(relative: Path) -> bool:
    top = relative.parts[0]
    return (
        top not in _SKIPPED_TOP
        and not top.startswith(".venv")
        and not (_SKIPPED_DIRS & set(relative.parts))
    )


def read_text(path: Path) -> str | None:
    """The file as UTF-8 text; None for a binary file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_prefixes(root: Path = ROOT) -> tuple[str, ...]:
    """Absolute path prefixes that point outside the checkout, or into it non-portably: the
    checkout's own path, its parent's, and (in a git worktree) the main checkout's parent's."""
    prefixes = {str(root) + "/"}
    parents = [root.parent]
    try:
        common = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=root,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.strip()
        parents.append(Path(common).parent.parent)
    except (OSError, subprocess.CalledProcessError):
        pass
    prefixes.update(str(parent) + "/" for parent in parents if parent != parent.parent)
    return tuple(sorted(prefixes))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _blank(match: re.Match[str]) -> str:
    """Code replaced by spaces, newlines kept, so that offsets still give line numbers."""
    return re.sub(r"[^\n]", " ", match[0])


def design_references(relative: str, text: str) -> list[Problem]:
    return [
        Problem(relative, _line(text, m.start()), f"refers to {DESIGN_DIR} (outside the checkout)")
        for m in re.finditer(re.escape(DESIGN_DIR), text)
    ]


def absolute_paths(relative: str, text: str, prefixes: tuple[str, ...]) -> list[Problem]:
    problems = []
    for m in _prefix_pattern(prefixes).finditer(text):
        why = f"absolute path {m[0]}… (outside the checkout, or not portable)"
        problems.append(Problem(relative, _line(text, m.start()), why))
    return problems


@cache
def _prefix_pattern(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![\w./~-])(?:" + "|".join(map(re.escape, prefixes)) + ")")


def heading_anchors(text: str) -> frozenset[str]:
    """GitHub's anchors of a markdown file's headings: `## 5. Errors` -> `5-errors`."""
    anchors = set()
    for m in _HEADING.finditer(_FENCE.sub(_blank, text)):
        title = m[1].replace("`", "").lower()
        anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return frozenset(anchors)


def markdown_links(path: Path, text: str, root: Path = ROOT) -> list[Problem]:
    """Relative links (and `../` paths in code spans) that leave the checkout or lead nowhere,
    and `#anchors` of markdown files that no heading has."""
    relative = str(path.relative_to(root))
    prose = _FENCE.sub(_blank, text)
    problems = []
    for m in _CODE_SPAN.finditer(prose):
        if m[1].startswith("../") and not _inside(path.parent / m[1], root):
            why = f"path {m[1]!r} is outside the checkout"
            problems.append(Problem(relative, _line(text, m.start()), why))
    prose = _CODE_SPAN.sub(_blank, prose)
    for m in (*_INLINE_LINK.finditer(prose), *_REFERENCE_LINK.finditer(prose)):
        why = _link_problem(path, text, m[1], root)
        if why:
            problems.append(Problem(relative, _line(text, m.start()), why))
    return problems


def _link_problem(path: Path, text: str, target: str, root: Path) -> str:
    if _SCHEME.match(target):
        return ""
    file_part, _, anchor = target.partition("#")
    if not file_part:
        return "" if anchor in heading_anchors(text) else f"link {target!r}: no such heading"
    if file_part.startswith("/"):
        return f"link {target!r} is an absolute path"
    linked = (path.parent / file_part) if file_part else path
    if not _inside(linked, root):
        return f"link {target!r} leads outside the checkout"
    if not linked.exists():
        return f"link {target!r}: no such file"
    if anchor and linked.suffix == ".md":
        linked_text = read_text(linked) or ""
        if anchor not in heading_anchors(linked_text):
            return f"link {target!r}: {linked.name} has no heading with that anchor"
    return ""


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.normpath(path)).is_relative_to(root)


@cache
def _sections_of(doc: Path) -> frozenset[int]:
    return numbered_sections(read_text(doc) or "") if doc.exists() else frozenset()


def numbered_sections(text: str) -> frozenset[int]:
    """The N of every `## N. Title` heading."""
    return frozenset(int(m[1]) for m in _NUMBERED_HEADING.finditer(text))


def citations(relative: str, text: str, docs: Path = DOCS) -> list[Problem]:
    """`docs/x.md §N` (or `x.md §N` for a file of docs/) whose doc has no heading `N.`, and
    `docs/x.md` paths that do not exist."""
    problems = []
    for m in _CITATION.finditer(text):
        name = Path(m[1]).name
        ours = m[1].startswith("docs/") or (docs / name).exists()
        if ours and int(m[2]) not in _sections_of(docs / name):
            why = f"cites docs/{name} §{m[2]}, which has no heading '{m[2]}.'"
            problems.append(Problem(relative, _line(text, m.start()), why))
    for m in _DOCS_PATH.finditer(text):
        if not (docs.parent / m[0]).exists():
            problems.append(Problem(relative, _line(text, m.start()), f"{m[0]} does not exist"))
    return problems


def unqualified_citations(relative: str, text: str, docs: Path = DOCS) -> list[Problem]:
    """In code, a doc of docs/ named without `docs/` (ambiguous: another copy may exist)."""
    problems = []
    for m in _doc_names(docs).finditer(text):
        why = f"names {m[0]}: write docs/{m[0]}"
        problems.append(Problem(relative, _line(text, m.start()), why))
    return problems


@cache
def _doc_names(docs: Path) -> re.Pattern[str]:
    names = sorted(doc.name for doc in docs.glob("*.md"))
    return re.compile(r"(?<![\w./-])(?:" + "|".join(map(re.escape, names)) + ")")
