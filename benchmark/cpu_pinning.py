"""One CPU instruction-set level for every kernel family that dispatches on it.

On the CPU, a training's bits depend on which kernels run: ATen's vectorised operators
(chosen at start-up among DEFAULT / AVX2 / AVX512), oneDNN's convolutions (JIT-compiled for
the CPU found, with blockings that also depend on its caches) and the BLAS (MKL picks its
code path per CPU, and sums in a different order on each). Two machines of different CPU
types therefore take different — chaotic — trajectories from the same seed. With a grid's
``reproducible_cpu: true`` every cell runs in a fresh process whose environment pins:

* ATen at AVX2 (``ATEN_CPU_CAPABILITY=avx2``, read when torch starts);
* the BLAS in MKL's conditional-numerical-reproducibility mode at AVX2
  (``MKL_CBWR=AVX2,STRICT``: the same results on every CPU that has AVX2, for a fixed
  thread count), and one thread;
* oneDNN off (``torch.backends.mkldnn.enabled = False``): convolutions take ATen's own
  im2col + BLAS path, so the pinned BLAS decides their bits too — oneDNN has no switch that
  fixes its cache-dependent blocking (its 1x1 convolutions choose their reduction blocking
  from the L2 size, so two AVX2 CPUs with different caches sum in different orders). The
  price on a 2-core AMD EPYC: the demo's training step 1.3-1.4x and its evaluation 1.4-1.9x
  slower than oneDNN at the machine's best level (``perf/bench_demo_cell.py``);
* one torch thread (reductions split by thread count).

OpenCV and numpy's transcendental functions are pinned for the data by
:mod:`benchmark.data.isa` (every process that generates or corrupts images). A CPU without
AVX2 cannot run the pinned level: the cell stops with a clear error. The record's provenance
names the CPU and the level each family used (:func:`cpu_report`), pinned or not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from benchmark.errors import BenchmarkError

#: the environment of a pinned cell process (set before torch is imported there)
PINNED_ENV = {
    "BENCH_REPRODUCIBLE_CPU": "1",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "MKL_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


def pinned() -> bool:
    """Whether this process was started pinned (:data:`PINNED_ENV`)."""
    return os.environ.get("BENCH_REPRODUCIBLE_CPU") == "1"


@contextlib.contextmanager
def pinned_environment(enabled: bool = True) -> Iterator[None]:
    """:data:`PINNED_ENV` in this process's environment while the block runs (``enabled``),
    the previous values restored after it: processes started inside (the local executor's
    workers, SLURM tasks submitted from here) start pinned, and nothing started later
    inherits the pin. Torch already imported *here* is not changed: cells must run in fresh
    processes."""
    if not enabled:
        yield
        return
    from benchmark.store import environment

    with environment(PINNED_ENV):
        yield


def apply_in_process() -> None:
    """In a pinned process, after torch is imported: oneDNN off, one thread, and a check that
    ATen took the pinned level (a CPU without AVX2 falls back: refused)."""
    import torch

    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        raise BenchmarkError(
            f"reproducible_cpu: torch runs its {capability} kernels where AVX2 was pinned "
            f"(ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY')!r}); this CPU "
            "lacks AVX2, or torch was imported before the pin — run the grid with "
            "reproducible_cpu: false here")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_report() -> dict[str, Any]:
    """What the provenance records: the CPU model, the level each kernel family used, and
    whether the process was pinned."""
    import torch

    mkldnn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    try:
        import cv2

        opencv = "baseline" if not cv2.useOptimized() else "native"
    except ImportError:
        opencv = "absent"
    return {
        "model": cpu_model(),
        "isa": {
            "aten": torch.backends.cpu.get_cpu_capability().lower(),
            "onednn": os.environ.get("ONEDNN_MAX_CPU_ISA", "native").lower() if mkldnn
            else "off",
            "blas": os.environ.get("MKL_CBWR", "native").lower(),
            "opencv": opencv,
        },
        "pinned": pinned(),
    }
