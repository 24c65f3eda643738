"""Text the engine measures on when the user gives none: Python's own standard library
source, which every interpreter ships (nothing downloads).

Calibration and evaluation read different modules, so the perplexity is not measured on
the text the plan was fitted to. A model folder that ships ``heldout.txt`` (memlens's
trained fixture) is evaluated on that instead.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from memlens.errors import UsageError

CALIBRATION_MODULES = ("argparse.py", "textwrap.py", "dataclasses.py")
EVALUATION_MODULES = ("json/decoder.py", "string.py", "fractions.py")
HELDOUT = "heldout.txt"


def _stdlib(names: tuple[str, ...]) -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    return "\n".join((root / name).read_text(encoding="utf-8") for name in names)


def read_text(path: str | Path) -> str:
    """A user's text file; UsageError when it cannot be read or is empty."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text.strip():
        raise UsageError(f"{path} is empty")
    return text


def calibration_text() -> str:
    """Default calibration text (stdlib source)."""
    return _stdlib(CALIBRATION_MODULES)


def evaluation_text(model_folder: Path | None) -> str:
    """The folder's ``heldout.txt`` if it ships one, else stdlib modules the calibration
    text does not include."""
    if model_folder is not None and (model_folder / HELDOUT).is_file():
        return read_text(model_folder / HELDOUT)
    return _stdlib(EVALUATION_MODULES)
