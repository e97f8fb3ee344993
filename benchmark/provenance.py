"""What produced a result: code version, packages, device, datasets, time."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from typing import Any

from benchmark import __version__
from benchmark.cpu_pinning import cpu_report
from benchmark.spec import RESULTS_VERSION
from benchmark.store import REPO_ROOT

PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "pycocotools",
    "imagecorruptions-imaug",
    "opencv-python-headless",
    "scikit-image",
    "efficientnet-lite-pytorch",
    "submitit",
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


#: outputs the suite writes into the checkout: changing them does not make the code dirty
OUTPUT_PATHS = ("results", "BENCHMARKS.md")


def git_state() -> dict[str, Any]:
    """The commit of the code and whether tracked code differs from it (``git_dirty``);
    the suite's own outputs (:data:`OUTPUT_PATHS`) do not count, so records regenerated in a
    clean checkout say so."""
    commit = _git("rev-parse", "HEAD")
    excluded = [f":(exclude){p}" for p in OUTPUT_PATHS]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0)
        if cuda
        else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "num_threads": torch.get_num_threads(),
        "cpu": cpu_report(),  # model and instruction-set level of each kernel family
        "world_size": int(os.environ.get("WORLD_SIZE", 1)),
    }


def provenance() -> dict[str, Any]:
    return {
        "code_version": __version__,
        "results_version": RESULTS_VERSION,
        **git_state(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        **device_info(),
        "hostname": socket.gethostname(),
    }
