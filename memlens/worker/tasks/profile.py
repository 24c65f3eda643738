"""``memlens.profile``: measured memory of a real load and a short generation.

With weights on disk (a local model folder or an HF-cache snapshot holding
``*.safetensors``) the model is loaded (never with remote code) and measured: bytes per
block from the loaded tensors and the peak of a short ``generate()``. Without weights it
returns the meta-device skeleton and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memlens.errors import UsageError
from memlens.profiler.configs import ResolvedConfig
from memlens.worker.protocol import RequestContext, method
from memlens.worker.tasks.common import ModelRequest

_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def weights_folder(resolved: ResolvedConfig) -> Path | None:
    """The folder holding this model's safetensors weights, if they are on disk."""
    if resolved.origin not in ("path", "hf-cache"):
        return None
    folder = Path(resolved.location).parent
    return folder if any(folder.glob("*.safetensors")) else None


def _positive(params: dict[str, Any], name: str, default: int, limit: int) -> int:
    value = params.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise UsageError(f"'{name}' must be an integer between 1 and {limit}")
    return value


@method("memlens.profile")
def profile(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """``{"kind": "profile", "model", "estimate", "measured" | None, "notes"}``."""
    request = ModelRequest.from_params(params)
    prompt = _positive(params, "prompt_tokens", 64, 1 << 16)
    new = _positive(params, "new_tokens", 8, 1 << 14)
    dtype = request.dtypes[0]
    if dtype.value not in _TORCH_DTYPES:
        raise UsageError("profile runs the model as loaded: use fp32, bf16 or fp16")
    context.progress(f"Resolving {request.model}", 2)
    resolved = request.resolve()
    from memlens.profiler.meta import exact_estimate

    [estimate] = exact_estimate(
        resolved.config, resolved.model, [dtype], context=prompt + new, batch=request.batch
    )
    report: dict[str, Any] = {
        "kind": "profile",
        "model": resolved.model,
        "estimate": estimate.to_json(),
        "measured": None,
        "notes": [],
    }
    folder = weights_folder(resolved)
    if folder is None:
        report["notes"].append(
            "weights are not on disk: this is the meta-device skeleton (exact shapes, "
            "nothing measured); point the load at a local folder with safetensors to measure"
        )
        return report
    report["measured"] = _measure(
        folder, resolved, _TORCH_DTYPES[dtype.value], request.batch, prompt, new, context
    )
    return report


def _measure(
    folder: Path,
    resolved: ResolvedConfig,
    torch_dtype: str,
    batch: int,
    prompt: int,
    new: int,
    context: RequestContext,
) -> dict[str, Any]:
    import torch

    from memlens.profiler.measure import measure_peak, module_bytes
    from memlens.profiler.meta import blocks_of, transformers_module

    transformers = transformers_module()

    context.progress(f"Loading weights from {folder}", 10)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, dtype=getattr(torch, torch_dtype), use_safetensors=True
    ).eval()
    context.check()
    element = torch.tensor([], dtype=getattr(torch, torch_dtype)).element_size()
    layers = [
        {"name": b.name, "bytes": b.params * element, "params": b.params}
        for b in blocks_of(model, causal=True, attention=[])
    ]
    vocab = int(resolved.config.get("vocab_size") or model.config.vocab_size)
    ids = torch.randint(0, vocab, (batch, prompt))

    class _Watch(transformers.StoppingCriteria):  # type: ignore[misc,name-defined]
        steps = 0

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            self.steps += 1
            context.progress(f"Generating token {self.steps}/{new}", 30 + 70 * self.steps // new)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    def generate() -> Any:
        with torch.no_grad():
            return model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                stopping_criteria=transformers.StoppingCriteriaList([_Watch()]),
            )

    context.progress("Prefilling", 30)
    _, peak = measure_peak(generate, resident_bytes=module_bytes(model))
    return {
        "layers": layers,
        "weights_bytes": peak.resident_bytes,
        "peak_bytes": peak.peak_bytes,
        "prompt_tokens": prompt,
        "new_tokens": new,
        "batch": batch,
        "device": peak.device,
    }
