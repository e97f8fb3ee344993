"""One instruction-set level for every kernel family (benchmark.cpu_pinning): a pinned
process runs ATen at AVX2, MKL in its AVX2 reproducibility mode, oneDNN off and one thread,
names it in the provenance, and refuses to run at another level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmark.cpu_pinning import PINNED_ENV

REPO = Path(__file__).resolve().parent.parent


_PROBE = """
import json, torch
from benchmark.cpu_pinning import apply_in_process, cpu_report
apply_in_process()
print(json.dumps({"report": cpu_report(), "threads": torch.get_num_threads(),
                  "mkldnn": torch.backends.mkldnn.enabled}))
"""


def test_a_pinned_process_reports_its_levels() -> None:
    env = {**os.environ, **PINNED_ENV}
    p = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    report = out["report"]
    assert report["pinned"] is True
    assert report["isa"] == {"aten": "avx2", "onednn": "off", "blas": "avx2,strict",
                             "opencv": report["isa"]["opencv"]}
    assert out["threads"] == 1 and out["mkldnn"] is False
    assert report["model"]  # /proc/cpuinfo's model name


def test_a_process_at_another_level_is_refused_the_pin() -> None:
    """torch started at another level than the pinned one (here forced to its scalar
    DEFAULT kernels; on an AVX-512 machine, torch imported before the pin) must not run a
    reproducible_cpu cell."""
    env = {**os.environ, **PINNED_ENV, "ATEN_CPU_CAPABILITY": "default"}
    p = subprocess.run(
        [sys.executable, "-c", "from benchmark.cpu_pinning import apply_in_process\n"
         "apply_in_process()"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "reproducible_cpu: torch runs its DEFAULT kernels where AVX2 was pinned" in p.stderr


def test_the_pin_does_not_outlive_its_block(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The executor pins the environment its workers start in, and only that: a process
    started after the run (a later test's subprocess, the next command) is not pinned."""
    from benchmark.cpu_pinning import pinned_environment

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    with pinned_environment():
        assert os.environ["OMP_NUM_THREADS"] == "1"
        assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2"
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert "ATEN_CPU_CAPABILITY" not in os.environ
