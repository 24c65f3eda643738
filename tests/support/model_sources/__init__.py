"""Model files in the styles people write their own models in, written for memlens's tests:
a dataclass config with tied weights and a custom LayerNorm; a ``ModelArgs`` with
``__post_init__``, a helper function and a dict of named configs; a Llama-style model split
over two files. The evaluator reads them as text; the tests instantiate them with torch on
the meta device for the truth."""

from pathlib import Path

HERE = Path(__file__).parent
DATACLASS_GPT = (HERE / "dataclass_gpt.py").read_text()
NAMED_CONFIGS = (HERE / "named_configs.py").read_text()
LLAMA_PARTS = HERE / "llama_parts"
"""A package: ``layers.py`` (config and layers) and ``model.py`` (imports them)."""
