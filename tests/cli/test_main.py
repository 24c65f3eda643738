"""The ``memlens`` entry point's logging: libraries' warnings (torchao's missing CUDA
extensions, Triton) stay off the terminal unless ``--verbose`` (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_NOISY_RUN = """
import logging, sys, warnings
from memlens.cli import estimate, main
def noisy(args):
    logging.getLogger("torchao.kernel").warning("torchao CUDA extension missing")
    warnings.warn("triton not found", UserWarning)
    logging.getLogger("memlens.engine").warning("a memlens warning")
    import torch  # its own handlers: the TORCH_LOGS setting decides
    logging.getLogger("torch.utils._pytree").warning("torch pytree warning")
    return 0
estimate.run = noisy
sys.exit(main.main([*sys.argv[1:], "estimate", "gpt2"]))
"""


def _run(*options: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TORCH_LOGS"}
    done = subprocess.run(
        [sys.executable, "-c", _NOISY_RUN, *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=env,
    )
    return done.stderr


def test_other_libraries_warnings_are_hidden_and_memlens_own_are_shown() -> None:
    stderr = _run()
    assert "memlens: WARNING: a memlens warning" in stderr
    assert "torchao" not in stderr and "triton" not in stderr and "pytree" not in stderr


@pytest.mark.parametrize("flag", ["--verbose", "-v"])
def test_verbose_shows_every_librarys_warnings(flag: str) -> None:
    stderr = _run(flag)
    assert "torchao CUDA extension missing" in stderr
    assert "triton not found" in stderr
    assert "a memlens warning" in stderr
    assert "torch pytree warning" in stderr
