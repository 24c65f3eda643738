"""Following imports into the workspace: a Llama-style model split over two files, sized
as torch counts it on the meta device; nothing outside the workspace is read."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import torch

from memlens.lsp_server.analysis import analyze, workspace_loader
from tests.support.meta_truth import torch_size
from tests.support.model_sources import LLAMA_PARTS as PARTS


def _copy(tmp_path: Path) -> Path:
    package = tmp_path / "mymodel"
    shutil.copytree(PARTS, package, ignore=shutil.ignore_patterns("__pycache__"))
    return package


def test_a_model_split_over_two_files_matches_torch(tmp_path: Path) -> None:
    package = _copy(tmp_path)
    model = package / "model.py"
    analysis = analyze(model.read_text(), loader=workspace_loader(model, tmp_path))
    [llama] = [c for c in analysis.classes if c.name == "Llama"]
    [build] = analysis.builds
    sys.path.insert(0, str(tmp_path))
    try:
        with torch.device("meta"):
            module = importlib.import_module("mymodel.model")
            truth_default = torch_size(module.Llama(module.LlamaArgs()))
            truth_build = torch_size(module.build())
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("mymodel")]:
            del sys.modules[name]
    assert llama.size is not None and llama.size.defaults_of == "LlamaArgs"
    assert (llama.size.params, llama.size.bytes) == truth_default
    assert (build.size.params, build.size.bytes) == truth_build


def test_without_the_other_file_its_parts_are_unknown(tmp_path: Path) -> None:
    package = _copy(tmp_path)
    (package / "layers.py").unlink()
    model = package / "model.py"
    analysis = analyze(model.read_text(), loader=workspace_loader(model, tmp_path))
    [llama] = [c for c in analysis.classes if c.name == "Llama"]
    assert llama.size is not None and llama.size.params == 0 and llama.size.unknown


def test_imports_outside_the_workspace_are_not_read(tmp_path: Path) -> None:
    """A module beside the workspace (as site-packages would be) is not followed, nor is
    a file that does not parse."""
    outside = tmp_path / "outside"
    inside = tmp_path / "ws"
    shutil.copytree(PARTS, outside / "mymodel", ignore=shutil.ignore_patterns("__pycache__"))
    inside.mkdir()
    (inside / "broken.py").write_text("class (:\n")
    load = workspace_loader(inside / "main.py", inside)
    assert load("mymodel.layers") is None
    assert load("..outside.mymodel.layers") is None
    assert load(".broken") is None
    assert load("missing") is None
