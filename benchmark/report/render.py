"""Templates → text: BENCHMARKS.md and leaderboard.html (``benchmark/templates``).

The page's prose comes from the same markdown as BENCHMARKS.md; :func:`md_inline` renders it
with markdown-it-py (CommonMark, raw HTML escaped), so emphasis, code spans, links and
escapes read on the page as they do on a forge."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "typographer": False})


def md_inline(text: str) -> Any:
    """Inline markdown (a table cell, a note, a definition) as safe HTML."""
    from markupsafe import Markup

    return Markup(_markdown().renderInline(str(text)))


def std_below(html: Any) -> Any:
    """``17.0 ± 1.9`` → the mean, with the ``± 1.9`` as a second, smaller line of the cell:
    a number column is as wide as its mean, not as its mean and std side by side."""
    import re

    from markupsafe import Markup

    return Markup(re.sub(r"(\S) ± (\S+)", r'\1 <span class="sd">± \2</span>', str(html), count=1))


def render_template(template: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md_inline"] = md_inline
    env.filters["std_below"] = std_below
    return env.get_template(template).render(**context)
