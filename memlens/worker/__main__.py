"""``python -m memlens.worker``: serve requests on stdin/stdout until stdin closes.

The protocol gets its own copy of stdout; file descriptor 1 and ``sys.stdout`` then point
at stderr, so a stray ``print`` (ours, transformers', a native library's) can never glue
itself onto a reply line.
"""

import os
import sys

from memlens.worker.protocol import serve

protocol_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr
sys.exit(serve(sys.stdin, protocol_out))
