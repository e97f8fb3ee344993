"""``python -m benchmark.compare``: runs :func:`benchmark.compare.cli.main`."""

import sys

from benchmark.compare.cli import main

sys.exit(main())
