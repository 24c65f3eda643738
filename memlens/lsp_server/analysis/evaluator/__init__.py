"""A small, safe interpreter for the constructor code of ``nn.Module`` classes.

It runs ``__init__`` bodies, config classes (``@dataclass``, ``NamedTuple``, plain classes,
``__post_init__``), small pure functions and classmethods of one parsed file (and of the
workspace modules it imports) on values it knows (numbers, strings, tuples, lists, dicts,
config objects, modules, tensors with a size), never importing or executing the user's
code. ``torch.nn`` layers come from the layer tables; ``nn.Parameter(torch.ones(n))`` is a
parameter; ``register_buffer`` a buffer (memory, not parameters); ``a.weight = b.weight``
ties two modules to one tensor, counted once.

What it does not model is unknown (loops over runtime data, I/O, attributes of unknown
objects); every operation costs a step and a run stops at its budget, so any text ends.

Modules: ``values`` (what it computes with), ``module_names`` (module-level names),
``classes`` (class bodies, instances, attributes), ``expressions``, ``statements``,
``calls``, ``builtin_calls``, ``torch_modules``, ``interpreter`` (the state every part
shares) and ``sizes`` (what a class or a call builds).
"""

from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator
from memlens.lsp_server.analysis.evaluator.sizes import call_size, class_size
from memlens.lsp_server.analysis.evaluator.values import STEP_BUDGET, ClassRef

__all__ = ["STEP_BUDGET", "ClassRef", "Evaluator", "call_size", "class_size"]
