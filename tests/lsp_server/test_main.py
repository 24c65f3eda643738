"""``python -m memlens.lsp_server``'s logging: what helps a user at warning, the routine at
debug (issue 17: the output channel filled with pygls's cancel warnings while typing)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from memlens.lsp_server.__main__ import DemoteRoutineWarnings


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.addFilter(DemoteRoutineWarnings())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    yield out
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_cancel_noise_is_debug_and_other_warnings_stay(stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    log = logging.getLogger("pygls.protocol.json_rpc")
    log.warning('Cancel notification for unknown message id "%s"', 12)
    log.warning("worker wrote a line that is not a reply")
    assert stream.getvalue() == "WARNING: worker wrote a line that is not a reply\n"
    logging.getLogger().setLevel(logging.DEBUG)
    log.warning('Cancel notification for unknown message id "%s"', 13)
    assert stream.getvalue().endswith('DEBUG: Cancel notification for unknown message id "13"\n')
