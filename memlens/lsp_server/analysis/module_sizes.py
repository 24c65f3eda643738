"""What the ``nn.Module`` classes of a document build: bytes per layer and totals per
class, submodules included, as far as the source says them statically."""

from __future__ import annotations

from dataclasses import dataclass

from memlens.lsp_server.analysis.dtype_names import element_bytes
from memlens.lsp_server.analysis.findings import LayerFinding, ModuleClass


def layer_bytes(layer: LayerFinding) -> int | None:
    """Bytes of all instances of a layer at its dtype (None when anything is unknown)."""
    element = element_bytes(layer.dtype)
    if layer.params is None or layer.count is None or element is None:
        return None
    return layer.params * layer.count * element


@dataclass(frozen=True)
class ClassTotal:
    """Parameters and bytes a module class builds, as far as they are known statically."""

    params: int
    bytes: int
    complete: bool
    """False when some layer or submodule could not be counted (figures are a floor)."""


def class_totals(classes: tuple[ModuleClass, ...]) -> dict[str, ClassTotal]:
    """Totals per class, submodules included (each class counted once per use)."""
    by_name = {c.name: c for c in classes}
    totals: dict[str, ClassTotal] = {}

    def total(name: str, visiting: frozenset[str]) -> ClassTotal:
        if name in totals:
            return totals[name]
        cls = by_name[name]
        params = size = 0
        complete = cls.unknown_parts == 0
        for layer in cls.layers:
            counted = layer_bytes(layer)
            if counted is None or layer.params is None or layer.count is None:
                complete = False
                continue
            params += layer.params * layer.count
            size += counted
        for use in cls.submodules:
            if use.module in visiting or use.count is None:
                complete = False
                continue
            inner = total(use.module, visiting | {name})
            params += inner.params * use.count
            size += inner.bytes * use.count
            complete = complete and inner.complete
        totals[name] = ClassTotal(params, size, complete)
        return totals[name]

    for name in by_name:
        total(name, frozenset({name}))
    return totals
