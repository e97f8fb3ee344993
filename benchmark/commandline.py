"""What every command line of the suite shares: help that shows defaults, an example and the
exit codes, plain text (no reStructuredText markup) in the terminal, and ``--version``.
Imports nothing heavy: ``--help`` of every command stays well under a second.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :mod:`benchmark.x`, :func:`f`
_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str) -> str:
    """``text`` without reStructuredText markup: roles and double backticks dropped."""
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))


def version() -> str:
    """The installed package's version (importlib.metadata), or "unknown"."""
    from importlib import metadata

    try:
        return metadata.version("robust-det-bench")
    except metadata.PackageNotFoundError:
        return "unknown"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Description and epilog kept as written; each option's default shown, unless it has
    none (None, False) or its help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default" in text.lower() or default is None
                or action.nargs == 0  # a flag: its "default" is the opposite of the flag
                or default is False or default is argparse.SUPPRESS or not action.option_strings
                or default == []):
            return text
        return f"{text} (default: %(default)s)"


def parser(prog: str, doc: str, *, example: str, exits: str, description: str | None = None,
           **kwargs: Any) -> argparse.ArgumentParser:
    """An ArgumentParser for ``python -m prog``: the description (``doc`` as plain text
    unless ``description`` is given), an epilog with an example and the exit codes, defaults
    shown, and ``--version``."""
    epilog = f"example:\n  {example}\n\nexit status: {exits}"
    ap = argparse.ArgumentParser(prog=prog, description=plain(description or doc),
                                 epilog=plain(epilog), formatter_class=HelpFormatter, **kwargs)
    ap.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    return ap


def add_root(ap: argparse.ArgumentParser, what: str = "results") -> None:
    ap.add_argument("--root", metavar="DIR",
                    help=f"work root: {what} under DIR/results, artifacts under DIR/artifacts, "
                         "leaderboard DIR/BENCHMARKS.md (default: $BENCH_RESULTS, else "
                         "runs/<grid>/ for a grid other than the committed demo, else results/)")


def add_grid_selection(ap: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) and ``--only KEY=VALUE,...`` (repeatable)."""
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="override a grid value before validation: a dotted path into the YAML "
                         "(schedule.iterations=10, experiments.0.recipes.1.lr=0.01, "
                         "seeds=[0,1]); VALUE is YAML. Repeatable")
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V[|V],...",
                    help="only these cells (and the stages they start from): keys backbone, "
                         "recipe, seed, weights, family; e.g. --only backbone=resnet18,"
                         "recipe=ft|dp. Repeatable")
