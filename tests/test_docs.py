"""The README and docs/ stay honest: relative links and anchors resolve, every page is
linked from both indexes, the exit-code table matches memlens/errors.py, and the docs
name exactly the ``memlens`` subcommands the CLI has."""

from __future__ import annotations

import argparse
import functools
import re
from pathlib import Path

import pytest

import memlens.errors
from memlens.cli.main import EXIT_INTERRUPTED, build_parser
from memlens.errors import MemlensError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
SUBCOMMAND = re.compile(r"(?:^|[|;&(]\s*|/bin/)memlens ([a-z][\w-]*)", re.MULTILINE)
"""``memlens WORD`` where a shell command starts (not ``from memlens import``)."""


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text outside fenced code blocks (links there are not links)."""
    return FENCE.sub("", text)


def _shell_code(text: str) -> list[str]:
    """Fenced blocks other than Python, and inline code spans: where commands are written."""
    fenced = [block for block in FENCE.findall(text) if not block.startswith("```python")]
    return fenced + [span.strip("`") for span in INLINE_CODE.findall(_prose(text))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _relative_links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(_prose(page.read_text(encoding="utf-8")))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    links = _relative_links(page)
    for target in links:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{_page_id(page)} links to {target}, which does not exist"
        if anchor:
            headings = HEADING.findall(_prose(linked.read_text(encoding="utf-8")))
            anchors = {_anchor(heading) for heading in headings}
            assert anchor in anchors, f"{_page_id(page)} links to {target}: no such heading"


@pytest.mark.parametrize("index", [ROOT / "README.md", DOCS / "README.md"], ids=_page_id)
def test_every_docs_page_is_linked_from_the_index(index: Path) -> None:
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in _relative_links(index)}
    pages = {page.resolve() for page in DOCS.glob("*.md") if page.name != "README.md"}
    assert pages, "docs/ has no pages"
    assert sorted(p.name for p in pages - linked) == []


def _exit_code_rows() -> dict[int, str]:
    """``{code: error class}`` from the table in docs/exit-codes.md (``""`` for none)."""
    rows: dict[int, str] = {}
    for line in (DOCS / "exit-codes.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            assert int(cells[0]) not in rows, f"exit code {cells[0]} is listed twice"
            rows[int(cells[0])] = cells[1].strip("`")
    return rows


def _error_classes() -> list[type[MemlensError]]:
    """The error classes that set an exit code of their own (the others exit with their
    base class's, as the table says)."""
    return [
        value
        for value in vars(memlens.errors).values()
        if isinstance(value, type)
        and issubclass(value, MemlensError)
        and "exit_code" in vars(value)
    ]


def test_every_error_class_is_in_the_exit_code_table_with_its_code() -> None:
    rows = _exit_code_rows()
    classes = _error_classes()
    assert len(classes) >= 2
    for error in classes:
        assert rows.get(error.exit_code) == error.__name__, (
            f"docs/exit-codes.md: {error.__name__} exits with {error.exit_code}"
        )


def test_the_exit_code_table_lists_only_codes_memlens_uses() -> None:
    codes = {error.exit_code for error in _error_classes()} | {0, EXIT_INTERRUPTED}
    assert set(_exit_code_rows()) == codes


@functools.cache
def _cli_subcommands() -> frozenset[str]:
    [commands] = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    return frozenset(commands.choices)


def _documented_subcommands() -> dict[str, set[str]]:
    """``{subcommand: pages}`` for every ``memlens WORD`` written as code."""
    named: dict[str, set[str]] = {}
    for page in PAGES:
        for code in _shell_code(page.read_text(encoding="utf-8")):
            for word in SUBCOMMAND.findall(code):
                named.setdefault(word, set()).add(_page_id(page))
    return named


def test_every_subcommand_the_docs_name_exists() -> None:
    unknown = {
        word: pages
        for word, pages in _documented_subcommands().items()
        if word not in _cli_subcommands()
    }
    assert unknown == {}


def test_every_subcommand_is_documented() -> None:
    assert sorted(_cli_subcommands() - set(_documented_subcommands())) == []
