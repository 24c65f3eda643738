"""Fixture 3 for tests: the converted SmolLM2-135M-Instruct folder.

``make smollm2-fixture`` (a step of ``make unit``) builds it; a test that needs it fails,
naming that target, when it is missing: CI builds it, so a skip would hide a broken step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fixtures.smollm2 import MAKE_TARGET, fixture_dir, is_built

CAPITAL_QUESTION = "What is the capital of France?"
"""The prompt whose greedy answer names Paris."""


def smollm2_dir() -> Path:
    """The converted folder; fails the calling test with the make target when missing."""
    folder = fixture_dir()
    if not is_built(folder):
        pytest.fail(
            f"fixture 3 (SmolLM2-135M-Instruct) is not built at {folder}: run `{MAKE_TARGET}`",
            pytrace=False,
        )
    return folder
