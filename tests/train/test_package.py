"""``memlens.train``'s door: every public name resolves, and importing it imports no torch."""

from __future__ import annotations

import subprocess
import sys

import memlens.train


def test_every_public_name_resolves() -> None:
    for name in memlens.train.__all__:
        assert getattr(memlens.train, name) is not None


def test_import_loads_no_torch() -> None:
    code = "import sys, memlens.train; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
