"""``python -m memlens.worker``: serve requests on stdin/stdout until stdin closes."""

import sys

from memlens.worker.protocol import serve

sys.exit(serve(sys.stdin, sys.stdout))
