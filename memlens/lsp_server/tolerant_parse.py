"""Parse half-typed Python: a syntax error in one function must not wipe the rest.

On a SyntaxError the innermost ``def``/``class`` block around the error line (or, at
module level, the statement's lines) is replaced by ``pass`` at the same indentation,
keeping every other line where it was, and the text is parsed again. Each blanked
region is reported.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

_HEADER = re.compile(r"^(?P<indent>[ \t]*)(async[ \t]+def|def|class)\b")
MAX_REPAIRS = 32


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


def _block_around(lines: list[str], error_line: int) -> tuple[int, int]:
    """The innermost def/class block containing ``error_line``, else its statement."""
    error_line = min(error_line, len(lines) - 1)
    for start in range(error_line, -1, -1):
        match = _HEADER.match(lines[start])
        if match is None:
            continue
        indent = _indent(lines[start])
        end = start
        for following in range(start + 1, len(lines)):
            if _is_code(lines[following]) and _indent(lines[following]) <= indent:
                break
            end = following
        if end >= error_line:
            return start, end
    # Module-level statement: from the last line at column 0 up to the next one.
    start = error_line
    while start > 0 and (not _is_code(lines[start]) or _indent(lines[start]) > 0):
        start -= 1
    end = error_line
    while end + 1 < len(lines) and not (_is_code(lines[end + 1]) and _indent(lines[end + 1]) == 0):
        end += 1
    return start, end


def parse_tolerant(text: str) -> ParsedSource:
    """Parse ``text``, blanking unparsable blocks until the rest parses."""
    lines = text.replace("\x00", " ").splitlines()
    blanked: list[tuple[int, int, str]] = []
    for _ in range(MAX_REPAIRS):
        try:
            with warnings.catch_warnings():  # the user's invalid escapes are not our logs
                warnings.simplefilter("ignore")
                tree = ast.parse("\n".join(lines))
            return ParsedSource(tree, text.splitlines(), tuple(blanked))
        except SyntaxError as exc:
            if not lines:
                break
            start, end = _block_around(lines, max((exc.lineno or 1) - 1, 0))
            indent = lines[start][: _indent(lines[start])]
            message = exc.msg
            blanked.append((start, end, message))
            lines[start : end + 1] = [f"{indent}pass"] + [""] * (end - start)
    return ParsedSource(ast.Module(body=[], type_ignores=[]), text.splitlines(), tuple(blanked))
