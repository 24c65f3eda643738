"""Memory-saving fine-tuning: LoRA adapters (+ quantization-aware training, QLoRA on
compressed layers), INT8 storage of saved activations, AdamW with 8-bit states (and a
CPU-offloaded AdamW for GPUs), L0-gated structured pruning, and the training loop and job
``memlens train`` runs.

Names are imported on first use (PEP 562): ``import memlens.train`` imports no torch.

- ``lora.py``, ``fake_quant.py``, ``qat.py``, ``frozen_base.py``: adapters, fake
  quantization, ``qat_``/``export_``, gradients through compressed layers;
- ``int8_activations.py``; ``optimizer8bit.py``, ``offload.py``, ``optimizers.py``;
- ``pruning.py``; ``data.py``, ``loop.py``, ``run.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memlens._lazy_names import lazy_names

if TYPE_CHECKING:
    from memlens.train.int8_activations import (
        Int8ActivationConfig,
        SavedBytes,
        count_saved_bytes,
        int8_activations,
    )
    from memlens.train.loop import TrainConfig, TrainReport, train
    from memlens.train.lora import LoraConfig, LoraLinear, lora_, merge_lora_
    from memlens.train.offload import CpuOffloadAdamW
    from memlens.train.optimizer8bit import AdamW8bit
    from memlens.train.pruning import PruneConfig, PruningGates, add_gates, prune
    from memlens.train.qat import export_, qat_
    from memlens.train.run import TrainJob, TrainResult, run_train

_MODULES: dict[str, str] = {
    "AdamW8bit": "memlens.train.optimizer8bit",
    "CpuOffloadAdamW": "memlens.train.offload",
    "Int8ActivationConfig": "memlens.train.int8_activations",
    "LoraConfig": "memlens.train.lora",
    "LoraLinear": "memlens.train.lora",
    "PruneConfig": "memlens.train.pruning",
    "PruningGates": "memlens.train.pruning",
    "SavedBytes": "memlens.train.int8_activations",
    "TrainConfig": "memlens.train.loop",
    "TrainJob": "memlens.train.run",
    "TrainReport": "memlens.train.loop",
    "TrainResult": "memlens.train.run",
    "add_gates": "memlens.train.pruning",
    "count_saved_bytes": "memlens.train.int8_activations",
    "export_": "memlens.train.qat",
    "int8_activations": "memlens.train.int8_activations",
    "lora_": "memlens.train.lora",
    "merge_lora_": "memlens.train.lora",
    "prune": "memlens.train.pruning",
    "qat_": "memlens.train.qat",
    "run_train": "memlens.train.run",
    "train": "memlens.train.loop",
}
"""Which module owns each public name."""

__all__ = [
    "AdamW8bit",
    "CpuOffloadAdamW",
    "Int8ActivationConfig",
    "LoraConfig",
    "LoraLinear",
    "PruneConfig",
    "PruningGates",
    "SavedBytes",
    "TrainConfig",
    "TrainJob",
    "TrainReport",
    "TrainResult",
    "add_gates",
    "count_saved_bytes",
    "export_",
    "int8_activations",
    "lora_",
    "merge_lora_",
    "prune",
    "qat_",
    "run_train",
    "train",
]


__getattr__, __dir__ = lazy_names(__name__, _MODULES, __all__)
