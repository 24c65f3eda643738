"""``python -m memlens`` runs the CLI."""

import sys

from memlens.cli.main import main

sys.exit(main())
