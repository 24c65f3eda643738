"""AdamW whose state lives in CPU memory while the parameters train on a GPU.

As each gradient is accumulated during backward, a hook copies it to pinned CPU memory
on a side stream, so the copies overlap the rest of backward; ``step`` updates the
float32 master copy and moments on the CPU and copies the new values back. GPU memory
then holds only parameters and gradients. On the CPU the option means nothing and is
refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from memlens.errors import UsageError
from memlens.train.adamw_update import adamw_update_


class CpuOffloadAdamW(torch.optim.Optimizer):
    """AdamW with float32 master weights and moments in pinned CPU memory (CUDA only)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        params = list(params)
        if not params or any(p.device.type != "cuda" for p in params):
            raise UsageError(
                "the CPU-offloaded optimizer keeps a GPU's optimizer state in CPU memory; "
                "these parameters are not on a GPU (on the CPU use --optimizer adamw8bit to "
                "make the state small)"
            )
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)
        self._stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        self._ready: dict[torch.nn.Parameter, torch.cuda.Event] = {}
        for param in params:
            state = self.state[param]
            state["master"] = param.detach().to("cpu", torch.float32).pin_memory()
            state["grad"] = torch.empty_like(state["master"]).pin_memory()
            state["exp_avg"] = torch.zeros_like(state["master"])
            state["exp_avg_sq"] = torch.zeros_like(state["master"])
            state["step"] = 0
            param.register_post_accumulate_grad_hook(self._copy_out)  # type: ignore[no-untyped-call]

    def _copy_out(self, param: torch.nn.Parameter) -> None:
        """Start the gradient's copy to the CPU as soon as backward has produced it."""
        assert param.grad is not None
        self._stream.wait_stream(torch.cuda.current_stream(param.device))
        with torch.cuda.stream(self._stream):
            self.state[param]["grad"].copy_(param.grad, non_blocking=True)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record(self._stream)
        self._ready[param] = event

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Update on the CPU from the copied gradients, then copy parameters back."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                event = self._ready.pop(param, None)
                if event is None:
                    continue
                event.synchronize()
                state: dict[str, Any] = self.state[param]
                state["step"] += 1
                master, moments = state["master"], (state["exp_avg"], state["exp_avg_sq"])
                adamw_update_(master, *moments, state["grad"], state["step"], group)
                param.copy_(master, non_blocking=True)
        return loss
