"""``memlens.engine`` imports lazily (memlens/engine/__init__.py): importing it, its
subpackages or its config modules pulls in neither torch nor transformers, and every
public name resolves to the object its owning module defines."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import memlens.engine

LIGHT_IMPORTS = [
    "memlens.engine",
    "memlens.engine.weights",
    "memlens.engine.kv",
    "memlens.engine.sessions",
    "memlens.engine.measure",
    "memlens.engine.weights.config",
    "memlens.engine.kv.config",
    "memlens.engine.sessions.config",
]


@pytest.mark.parametrize("module", LIGHT_IMPORTS)
def test_importing_leaves_torch_and_transformers_out(module: str) -> None:
    check = (
        f"import sys, {module}\n"
        "heavy = sorted({'torch', 'transformers'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_public_name_resolves_to_its_owner() -> None:
    for name in memlens.engine.__all__:
        value = getattr(memlens.engine, name)
        owner = importlib.import_module(memlens.engine._MODULES[name])
        assert value is getattr(owner, name), name
    assert set(memlens.engine.__all__) == set(memlens.engine._MODULES)
    assert set(memlens.engine.__all__) <= set(dir(memlens.engine))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Engine'"):
        memlens.engine.Engine  # noqa: B018  # the old name of ChatEngine is gone
