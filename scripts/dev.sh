#!/usr/bin/env bash
# One entry point for a fresh machine:
#   bash scripts/dev.sh demo   set up everything, run the offline demo grid, write BENCHMARKS.md
#   bash scripts/dev.sh test   set up everything (incl. the local SLURM test cluster), run tests
# Extra arguments after the verb go to `benchmark.run` (demo) or pytest (test).
set -euo pipefail
cd "$(dirname "$0")/.."
verb="${1:-demo}"; shift || true

PY="${PYTHON:-python3}"
VENV="${BENCH_VENV:-.venv}"
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "== setting up $VENV (torch 2.14.1 / torchvision 0.29.1 and the suite's dependencies)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -m pip install -q -e '.[test]' 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -c "import benchmark, torch, torchvision, imagecorruptions, pycocotools, submitit"
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"

case "$verb" in
  demo)
    # 2 cells at a time, 1 torch thread each, whatever the core count: the committed demo
    # records were made so, and CPU results are bit-identical only at the same thread count
    exec python -m benchmark.run --grid demo --workers 2 --threads 1 "$@"
    ;;
  test)
    # Provisions the local SLURM test cluster (Debian packages, daemons on loopback) where
    # root and apt-get are available, runs pytest, then stops the daemons it started.
    # Without root/apt the SLURM tests are skipped loudly; with CI=true they must run.
    exec python scripts/slurm_local.py run --if-possible -- python -m pytest -q "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test [args...]" >&2; exit 2
    ;;
esac
