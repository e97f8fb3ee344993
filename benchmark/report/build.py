"""Build the report: records → frames → one section per family → rendered markdown / HTML.

The markdown is a pure function of the records (and, for the bootstrap intervals, of the
saved predictions or the committed interval cache): no timestamps, stable orders.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation.summary_metrics import definitions
from benchmark.families import report_order
from benchmark.report.aggregation import assign_variants, code_key, counts
from benchmark.report.cards import card_table
from benchmark.report.figures import plot_jobs_for, rgn_plot_job
from benchmark.report.frames import Frames, load_frames
from benchmark.report.options import Options
from benchmark.report.published import published_table, rgn_table
from benchmark.report.reading import corruption_table, how_to_read, spec_table
from benchmark.report.records import Skipped
from benchmark.report.render import render_template
from benchmark.report.tables import FamilyTable, Table
from benchmark.report.uncertainty import RecordBootstrap, read_cache, uncertainty_tables
from benchmark.report.wise_figure import wise_ft_jobs


@dataclass
class Plot:
    title: str
    file: str  # file name under the plots directory


@dataclass
class FamilySection:
    name: str
    title: str
    description: str
    headline_label: str
    table: Table
    column_notes: list[str]
    notes: list[str] = field(default_factory=list)
    er_note: str = ""
    published: Table | None = None
    published_notes: list[str] = field(default_factory=list)
    card: Table | None = None  # the protocol card(s) of the runs and of the publications
    card_notes: list[str] = field(default_factory=list)
    uncertainty: Table | None = None
    paired: Table | None = None
    uncertainty_notes: list[str] = field(default_factory=list)
    corruption: Table | None = None  # rows × corruptions, severity means
    specs: Table | None = None  # the full spec behind each row's short names
    how_to_read: str = ""
    plots: list[Plot] = field(default_factory=list)

    @property
    def heatmaps(self) -> list[Plot]:
        """The corruption heatmap, shown with the per-corruption table."""
        return [p for p in self.plots if p.file.endswith("_corruption_heatmap.png")]

    @property
    def figures(self) -> list[Plot]:
        return [p for p in self.plots if p not in self.heatmaps]


@dataclass
class Report:
    markdown: str
    html: str
    plot_jobs: list[tuple[str, Callable[[Path], Any]]]
    cache: dict[str, Any]
    frames: Frames
    runs: pd.DataFrame  # frames.runs plus code / variant / er

    @property
    def skipped(self) -> list[Skipped]:
        return self.frames.skipped

    def leaderboard(self) -> pd.DataFrame:
        """One row per run × eval split, with the run's version tag and ER."""
        if self.frames.long is None:
            raise ValueError("built with exports=False: no run × split frame")
        return leaderboard_frame(self.frames.long, self.runs)


def provenance_summary(runs: pd.DataFrame) -> dict[str, Any]:
    """What produced the records: code, commits, engines, grids, software, devices, CPUs,
    datasets — each as (value, number of runs)."""
    if runs.empty:
        return {}
    datasets: dict[str, list[tuple[str, int]]] = {}
    per_split: dict[str, list[str]] = {}
    for ds in runs.datasets:
        for k, v in ds.items():
            per_split.setdefault(k, []).append(v[:12])
    for k in sorted(per_split):
        datasets[k] = counts(per_split[k])
    dirty = int(runs.git_dirty.fillna(False).astype(bool).sum()) if "git_dirty" in runs else 0
    machine = machine_summary(runs)
    return {
        "code": counts(runs.code),
        "commits": counts(c[:10] or "unknown" for c in runs.git_commit),
        "dirty": dirty,
        "datasets": datasets,
        "torch": counts(v or "unknown" for v in runs.torch),
        "python": counts(v or "unknown" for v in runs.python),
        "devices": counts(v or "unknown" for v in runs.device),
        "engines": counts(runs.engine),
        "grids": counts(v or "—" for v in runs.grid),
        **machine,
    }


#: the run frame's columns that name one software stack on one host
_STACK = ("hostname", "device", "torch", "python", "git_commit")


def machine_summary(runs: pd.DataFrame) -> dict[str, Any]:
    """CPU (model, kernel instruction sets, pinning), torch threads and package versions,
    read from one record per host × software stack (reading every record would double the
    report's JSON parsing) and counted for all the runs of that stack."""
    cpus: list[tuple[str, int]] = []
    threads: list[tuple[str, int]] = []
    packages: list[tuple[str, int]] = []
    cols = [c for c in _STACK if c in runs]
    for _, group in runs.groupby(cols, sort=True, dropna=False) if cols else []:
        prov = _record_provenance(Path(group.record_path.iloc[0]))
        n = len(group)
        cpus.append((_cpu_text(prov.get("cpu")), n))
        threads.append((str(prov.get("num_threads") or "unknown"), n))
        pkgs = prov.get("packages") or {}
        packages.append((", ".join(f"{k} {v}" for k, v in sorted(pkgs.items()) if v)
                         or "unknown", n))
    return {"cpus": _merge(cpus), "threads": _merge(threads), "packages": _merge(packages)}


def _merge(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    total: dict[str, int] = {}
    for v, n in pairs:
        total[v] = total.get(v, 0) + n
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


def _record_provenance(path: Path) -> dict[str, Any]:
    import json

    try:
        prov = json.loads(path.read_text(encoding="utf-8")).get("provenance")
    except (OSError, ValueError, AttributeError):
        return {}
    return prov if isinstance(prov, dict) else {}


def _cpu_text(cpu: Any) -> str:
    """"AMD EPYC (aten avx2, blas avx2,strict, onednn off, opencv native; pinned)"."""
    if not isinstance(cpu, dict):
        return "unknown"
    isa = cpu.get("isa") or {}
    kernels = ", ".join(f"{k} {v}" for k, v in sorted(isa.items())) if isinstance(isa, dict) \
        else str(isa)
    extra = "; ".join(x for x in (kernels, "pinned" if cpu.get("pinned") else "") if x)
    return f"{cpu.get('model') or 'unknown'}" + (f" ({extra})" if extra else "")


def build_report(options: Options) -> Report:
    frames = load_frames(options.results, long=options.exports)
    runs = frames.runs.copy()
    cache = read_cache(options.results)
    unc = None
    if options.n_resamples > 0:
        unc = RecordBootstrap(options.n_resamples, options.seed, options.level, cache)
    families: list[FamilySection] = []
    builders: list[FamilyTable] = []
    plot_jobs: list[tuple[str, Callable[[Path], Any]]] = []
    if not runs.empty:
        runs["code"] = [code_key(r) for r in
                        runs[["code_version", "results_version", "protocol"]].to_dict("records")]
        runs["er"] = np.nan
        runs["variant"] = assign_variants(runs)
        for name in report_order(set(runs.family)):
            fb = FamilyTable(name, runs[runs.family == name], options)
            builders.append(fb)
            runs.loc[fb.runs.index, "er"] = fb.runs["er"]
            column_notes = fb.column_notes()
            sec = FamilySection(fb.fam.name, fb.fam.title, fb.fam.description,
                                fb.headline_label, fb.table(), column_notes,
                                notes=list(fb.notes), er_note=fb.er_note)
            sec.published, sec.published_notes = published_table(fb)
            sec.card, sec.card_notes = card_table(fb)
            ut, pt, un, gains = uncertainty_tables(fb, unc)
            sec.uncertainty, sec.paired, sec.uncertainty_notes = ut, pt, un
            sec.corruption = corruption_table(fb)
            sec.specs = spec_table(fb)
            sec.how_to_read = how_to_read(fb, gains)
            for title, fname, job in plot_jobs_for(fb, gains, options.seed,
                                                   sweeps=wise_ft_jobs(fb)):
                sec.plots.append(Plot(title, fname))
                plot_jobs.append((fname, job))
            families.append(sec)
    rgn_plot: Plot | None = None
    if builders:
        title, fname, job = rgn_plot_job(builders)
        rgn_plot = Plot(title, fname)
        plot_jobs.append((fname, job))
    rgn_t, rgn_notes = rgn_table(runs) if not runs.empty else (None, [])
    context = {
        "options": options,
        "n_records": frames.n_records,
        "loaded": frames,
        "families": families,
        "rgn_table": rgn_t,
        "rgn_notes": rgn_notes,
        "rgn_plot": rgn_plot,
        "provenance": provenance_summary(runs),
        "skipped": frames.skipped,
        "definitions": definitions(options.baseline_recipe),
        "plots_rel": _rel(options.results / "plots", options.out.parent),
    }
    markdown = render_template("benchmarks.md.j2", context)
    html = render_template("leaderboard.html.j2", {**context, "plots_rel": "plots"}, html=True)
    return Report(markdown, html, plot_jobs, unc.cache_out if unc else {}, frames, runs)


def leaderboard_frame(long: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The long frame plus each run's code key, variant and ER."""
    if long.empty or runs.empty:
        return long
    extra = runs[["fingerprint", "code", "variant"]].rename(columns={"code": "code_key"})
    extra = extra.assign(er=runs["er"] if "er" in runs else np.nan)
    return long.merge(extra, on="fingerprint", how="left")


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()
