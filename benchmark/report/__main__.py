"""``python -m benchmark.report``: the command line of :mod:`benchmark.report.cli`."""

import sys

from benchmark.report.cli import main

sys.exit(main())
