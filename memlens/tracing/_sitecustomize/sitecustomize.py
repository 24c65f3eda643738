"""Put first on ``PYTHONPATH`` by ``memlens run``: switches tracing on before the service's
own code runs (the way ``opentelemetry-instrument`` does)."""

import sys

try:
    from memlens.tracing.instrument import bootstrap
except ImportError as exc:
    sys.stderr.write(
        f"memlens run: tracing is off in {sys.executable} ({exc}); "
        "run the service with the interpreter memlens is installed in\n"
    )
else:
    bootstrap()
