"""Python text → findings → memory estimates, from the source alone: a tolerant parse, one
indexing pass, static values, the ``torch.nn`` layer tables, and the analytic estimates of
what was found. Nothing here imports torch or the user's code."""

from memlens.lsp_server.analysis.analyzer import analyze
from memlens.lsp_server.analysis.estimates import Estimator, LoadEstimate
from memlens.lsp_server.analysis.findings import (
    Analysis,
    ConfigCall,
    DtypeChange,
    DtypeSlot,
    GenerateCall,
    LayerFinding,
    ModelBuild,
    ModelLoad,
    ModelSize,
    ModuleClass,
    Position,
    SourceEdit,
    Span,
    SubmoduleUse,
    SyntaxProblem,
    TrainingChange,
    TrainingSite,
)
from memlens.lsp_server.analysis.module_sizes import ClassTotal, class_totals, layer_bytes
from memlens.lsp_server.analysis.parse_cache import ParseCache, ParseCacheSize
from memlens.lsp_server.analysis.tolerant_parse import parse_tolerant, split_lines
from memlens.lsp_server.analysis.workspace_modules import workspace_loader

__all__ = [
    "Analysis",
    "ClassTotal",
    "ConfigCall",
    "DtypeChange",
    "DtypeSlot",
    "Estimator",
    "GenerateCall",
    "LayerFinding",
    "LoadEstimate",
    "ModelBuild",
    "ModelLoad",
    "ModelSize",
    "ModuleClass",
    "ParseCache",
    "ParseCacheSize",
    "Position",
    "SourceEdit",
    "Span",
    "SubmoduleUse",
    "SyntaxProblem",
    "TrainingChange",
    "TrainingSite",
    "analyze",
    "class_totals",
    "layer_bytes",
    "parse_tolerant",
    "split_lines",
    "workspace_loader",
]
