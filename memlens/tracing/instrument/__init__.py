"""What ``memlens run`` installs in a Python service, before its own code runs.

:func:`bootstrap` is called from the ``sitecustomize`` that ``memlens run`` puts first on
the child's ``PYTHONPATH``. It configures the OpenTelemetry SDK (service name from
``OTEL_SERVICE_NAME``; OTLP/HTTP to ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, which ``memlens
run`` points at the local collector unless set; batch export flushed at exit and on
SIGTERM), the propagators ``OTEL_PROPAGATORS`` names, the client/server instrumentation of
whichever of requests, httpx, urllib3, gRPC (sync and ``grpc.aio``), ``wsgiref`` and the ASGI
servers uvicorn and hypercorn are installed (ASGI has no global server registry: an app
served some other way needs OpenTelemetry's ASGI middleware in its own code), and
:class:`CodeLocationSpanProcessor`, which puts ``code.file.path``, ``code.line.number`` and
``code.function.name`` on spans and a ``memlens.memory`` event (RSS, and CUDA allocator
bytes when torch is already loaded) on server spans. Unless ``MEMLENS_MEMORY=0``, it also
starts the periodic memory metrics of :mod:`memlens.tracing.memory`.
"""

from memlens.tracing.instrument.bootstrap import bootstrap
from memlens.tracing.instrument.code_locations import CodeLocationSpanProcessor, is_user_code
from memlens.tracing.instrument.libraries import instrument_libraries

__all__ = ["CodeLocationSpanProcessor", "bootstrap", "instrument_libraries", "is_user_code"]
