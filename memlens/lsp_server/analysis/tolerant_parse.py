"""Parse half-typed Python: a syntax error in one function must not wipe the rest.

On a SyntaxError the innermost ``def``/``class`` block around the error line (or, at
module level, the statement's lines) is replaced by ``pass`` at the same indentation,
keeping every other line where it was, and the text is parsed again. Each blanked
region is reported.

Typing changes one top-level statement at a time, so a text is first parsed as its
top-level chunks; with a :class:`ParseCache` each is cached by its document, text and
first line, and an edit inside one function re-parses that function only.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

from memlens.lsp_server.analysis.parse_cache import ChunkKey, ParseCache

_HEADER = re.compile(r"^(?P<indent>[ \t]*)(async[ \t]+def|def|class)\b")
MAX_REPAIRS = 32
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTINUES = re.compile(r"^(else|elif|except|finally|case)\b|^[)\]}]")
_TRIPLE_QUOTE = re.compile(r'"""|\'\'\'')
_NOT_CODE_AT_0 = ("", " ", "\t", "#")


@dataclass(frozen=True)
class ParsedSource:
    """The tree of what could be parsed, and the line ranges that were blanked."""

    tree: ast.Module
    lines: list[str]
    blanked: tuple[tuple[int, int, str], ...]
    """(first line, last line, message), 0-based inclusive."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _with_decorators(lines: list[str], header: int) -> int:
    """The first line of the ``@decorator`` lines directly above a def/class header."""
    indent = _indent(lines[header])
    start = header
    while (
        start > 0
        and lines[start - 1].strip().startswith("@")
        and (_indent(lines[start - 1]) == indent)
    ):
        start -= 1
    return start


def _block_around(lines: list[str], error_line: int) -> tuple[int, int]:
    """The innermost def/class block (decorators included) containing ``error_line``,
    else its statement."""
    error_line = min(error_line, len(lines) - 1)
    for header in range(error_line, -1, -1):
        if _HEADER.match(lines[header]) is None:
            continue
        indent = _indent(lines[header])
        end = header
        for following in range(header + 1, len(lines)):
            if _is_code(lines[following]) and _indent(lines[following]) <= indent:
                break
            end = following
        while end > error_line and not _is_code(lines[end]):
            end -= 1  # trailing blank lines belong to nobody
        if end >= error_line:
            return _with_decorators(lines, header), end
    # Module-level statement: from the last line at column 0 up to the next one.
    start = error_line
    while start > 0 and (not _is_code(lines[start]) or _indent(lines[start]) > 0):
        start -= 1
    end = error_line
    while end + 1 < len(lines) and not (_is_code(lines[end + 1]) and _indent(lines[end + 1]) == 0):
        end += 1
    return start, end


def split_lines(text: str) -> list[str]:
    """Lines as LSP and Python's tokenizer count them: ``\r\n``, ``\r`` or ``\n`` only
    (``str.splitlines`` also breaks at form feeds and Unicode separators)."""
    return _LINE_BREAK.split(text)


def _chunks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line of each top-level statement, decorators kept with their
    definition, ``else``/``except`` with their statement, string and bracket
    continuations at column 0 with the line that opened them (approximately: a wrong
    split only makes a chunk fail to parse, and the caller then parses the whole text)."""
    starts = []
    in_string = False
    previous_decorator = False
    for number, line in enumerate(lines):
        at_column_0 = (
            not in_string and line[:1] not in _NOT_CODE_AT_0 and not _CONTINUES.match(line)
        )
        if at_column_0:
            if not previous_decorator:
                starts.append(number)
            # a ``)`` closing a multi-line ``@decorator(`` keeps it waiting for its def
            previous_decorator = line.startswith("@")
        if ('"""' in line or "'''" in line) and len(_TRIPLE_QUOTE.findall(line)) % 2:
            in_string = not in_string
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [(start, end - 1) for start, end in zip(starts, [*starts[1:], len(lines)], strict=True)]


def _parse_chunk(start: int, text: str) -> list[ast.stmt] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse("\n" * start + text).body  # absolute line numbers
    except SyntaxError:
        return None


def _parse_whole(lines: list[str], chunks: list[tuple[int, int]]) -> list[list[ast.stmt]] | None:
    """Each chunk's statements from one parse of the whole text (one parse costs less than
    one per chunk), the same statements a parse of each chunk alone gives; None when the
    text does not parse or a statement crosses a chunk's end (a wrong split)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = ast.parse("\n".join(lines)).body
    except SyntaxError:
        return None
    parts: list[list[ast.stmt]] = [[] for _ in chunks]
    index = 0
    for statement in body:
        decorators = getattr(statement, "decorator_list", [])
        first = min([statement.lineno, *(d.lineno for d in decorators)]) - 1
        last = (statement.end_lineno or statement.lineno) - 1
        while index < len(chunks) and chunks[index][1] < first:
            index += 1
        if index == len(chunks) or not chunks[index][0] <= first <= last <= chunks[index][1]:
            return None
        parts[index].append(statement)
    return parts


def _parse_chunked(lines: list[str], cache: ParseCache | None, document: str) -> ast.Module | None:
    """The module parsed chunk by chunk (through the cache, if any; a document the cache
    holds nothing of is parsed whole, then split); None if any chunk fails. Afterwards the
    cache holds only chunks of this text for ``document``."""
    body: list[ast.stmt] = []
    used: set[ChunkKey] = set()
    failed = False
    chunks = _chunks(lines)
    whole = _parse_whole(lines, chunks) if cache is None or not cache.holds(document) else None
    if whole is not None and cache is None:
        return ast.Module(body=[s for part in whole for s in part], type_ignores=[])
    for number, (start, end) in enumerate(chunks):
        key = (start, "\n".join(lines[start : end + 1]))
        if whole is not None:
            statements: list[ast.stmt] | None = whole[number]
        else:
            statements = cache.get(document, key) if cache is not None else None
        if statements is None:
            statements = _parse_chunk(*key)
            if statements is None:
                failed = True
                break
            if cache is not None:
                cache.put(document, key, statements)
        elif whole is not None and cache is not None:
            cache.put(document, key, statements)
        used.add(key)
        body.extend(statements)
    if cache is not None:
        cache.retain(document, used)
    return None if failed else ast.Module(body=body, type_ignores=[])


def parse_tolerant(text: str, cache: ParseCache | None = None, document: str = "") -> ParsedSource:
    """Parse ``text``, blanking unparsable blocks until the rest parses; with a ``cache``,
    the unchanged chunks of ``document``'s previous parse are reused (and only the
    chunks of this parse stay cached for it)."""
    original = split_lines(text)
    lines = split_lines(text.replace("\x00", " "))
    if (chunked := _parse_chunked(lines, cache, document)) is not None:
        return ParsedSource(chunked, original, ())
    blanked: list[tuple[int, int, str]] = []
    for _ in range(MAX_REPAIRS):
        try:
            with warnings.catch_warnings():  # the user's invalid escapes are not our logs
                warnings.simplefilter("ignore")
                tree = ast.parse("\n".join(lines))
            return ParsedSource(tree, original, tuple(blanked))
        except SyntaxError as exc:
            start, end = _block_around(lines, max((exc.lineno or 1) - 1, 0))
            if blanked and blanked[-1][:2] == (start, end):
                break  # blanking this region again cannot help
            indent = lines[start][: _indent(lines[start])]
            blanked.append((start, end, exc.msg))
            lines[start : end + 1] = [f"{indent}pass"] + [""] * (end - start)
    return ParsedSource(ast.Module(body=[], type_ignores=[]), original, tuple(blanked))
