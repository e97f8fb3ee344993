"""Write the report's outputs (BENCHMARKS.md, leaderboard CSV / Parquet / HTML, plots, the
interval cache) and compare the markdown with the file on disk (``--check``)."""

from __future__ import annotations

import difflib
import io
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import StorageError
from benchmark.report.build import Report
from benchmark.report.options import Options
from benchmark.report.uncertainty import CACHE_FILE, cache_json
from benchmark.store import WrittenTogether


def write_outputs(report: Report, options: Options) -> list[Path]:
    """BENCHMARKS.md, leaderboard CSV/Parquet/HTML, plots and the interval cache — all or
    none: everything is written to temporaries first and renamed together, so the markdown
    never disagrees with the leaderboard files (an error names the file it could not write).

    Plots render in a forked worker process while this one builds the tables (where
    ``fork`` is available; serially otherwise)."""
    res = Path(options.results)
    plots_dir = res / "plots"
    staging = res / f".plots.staging-{os.getpid()}"
    try:
        pending = _render_plots_async(report.plot_jobs, staging)
        with WrittenTogether() as out:
            out.write(options.out, report.markdown.encode("utf-8"))
            csv, parquet = table_bytes(report.leaderboard())
            out.write(res / "leaderboard.csv", csv)
            out.write(res / "leaderboard.parquet", parquet)
            written = [options.out, res / "leaderboard.csv", res / "leaderboard.parquet",
                       res / "leaderboard.html"]
            if report.cache:
                out.write(res / CACHE_FILE, cache_json(report.cache).encode("utf-8"))
                written.append(res / CACHE_FILE)
            pending()
            html = inline_plots(report.html, staging)
            out.write(res / "leaderboard.html", html.encode("utf-8"))
            for name, _ in report.plot_jobs:
                out.move(staging / name, plots_dir / name)
    except OSError as e:  # the staging directory (plots are written through the store)
        raise StorageError(f"{e.filename or staging}: cannot write: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written + [plots_dir / name for name, _ in report.plot_jobs]


def inline_plots(html: str, plots_dir: Path) -> str:
    """The page with every ``<img src="plots/NAME.png">`` whose file is in ``plots_dir``
    embedded as a data URI: leaderboard.html is one file that works offline and anywhere."""
    import base64
    import re

    def embed(m: re.Match[str]) -> str:
        path = Path(plots_dir) / m.group(1)
        if not path.is_file():
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    return re.sub(r'src="plots/([\w.-]+\.png)"', embed, html)


_PLOT_JOBS: list[tuple[str, Callable[[Path], Any]]] = []


def _plot_worker(index: int, plots_dir: str) -> None:
    name, job = _PLOT_JOBS[index]
    job(Path(plots_dir) / name)


def _render_plots_async(jobs: list[tuple[str, Callable[[Path], Any]]], plots_dir: Path
                        ) -> Callable[[], None]:
    """Start rendering in forked worker processes (the jobs are closures: they are inherited,
    not pickled); the returned function waits for them and re-raises their errors. Serial
    where ``fork`` is unavailable, torch is loaded (``benchmark.run`` reports in-process) or
    ``BENCH_REPORT_SERIAL`` is set."""
    import multiprocessing as mp

    if not jobs:
        return lambda: None
    # forking a process that has torch's thread pools running is asking for a deadlock
    no_fork = "torch" in sys.modules or bool(os.environ.get("BENCH_REPORT_SERIAL"))
    if "fork" not in mp.get_all_start_methods() or no_fork:
        def serial() -> None:
            for name, job in jobs:
                job(plots_dir / name)

        return serial
    from concurrent.futures import ProcessPoolExecutor

    _PLOT_JOBS[:] = jobs
    workers = max(1, min(2, os.cpu_count() or 1, len(jobs)))
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
    futures = [pool.submit(_plot_worker, i, str(plots_dir)) for i in range(len(jobs))]

    def wait() -> None:
        try:
            for f in futures:
                f.result()
        finally:
            pool.shutdown()
            _PLOT_JOBS.clear()

    return wait


def table_bytes(frame: pd.DataFrame) -> tuple[bytes, bytes]:
    """(CSV, Parquet) of one frame through Arrow (pandas' CSV writer is ~10× slower)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    csv, parquet = io.BytesIO(), io.BytesIO()
    pacsv.write_csv(table, csv)
    pq.write_table(table, parquet)
    return csv.getvalue(), parquet.getvalue()


def check(report: Report, options: Options) -> tuple[bool, str]:
    """(fresh, message): compare the rendered markdown with the file on disk."""
    out = Path(options.out)
    if not out.is_file():
        return False, f"{out}: missing (run `python -m benchmark.report` to generate it)"
    current = out.read_text(encoding="utf-8")
    if current == report.markdown:
        return True, f"{out}: up to date"
    diff = list(difflib.unified_diff(current.splitlines(), report.markdown.splitlines(),
                                     fromfile=f"{out} (on disk)", tofile="rendered from results",
                                     lineterm="", n=1))
    shown = "\n".join(diff[:60]) + ("\n…" if len(diff) > 60 else "")
    return False, (f"{out}: stale — it differs from what the results render "
                   f"(run `python -m benchmark.report`):\n{shown}")
