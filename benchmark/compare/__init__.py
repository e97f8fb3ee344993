"""Compare: did one results root reproduce another (``python -m benchmark.compare``)?

* :mod:`~benchmark.compare.cli` — the command line (:func:`main`);
* :mod:`~benchmark.compare.pairing` — which run of one root is paired with which of the
  other (runs ↔ runs; not :mod:`benchmark.evaluation.matching`, detections ↔ ground truth);
* :mod:`~benchmark.compare.seed_noise` — training noise, the seed yardstick;
* :mod:`~benchmark.compare.verdict` — each pair judged, the summary verdict.

The records, their bootstrap intervals and their names are the report's
(:mod:`benchmark.report`); this package only reads them.
"""

from benchmark.compare.cli import main

__all__ = ["main"]
