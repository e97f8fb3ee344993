"""Protocol cards in the report: the card(s) a family's runs ran with, next to the cards of
its publications, and whether a reproduced row may be compared with a published one
(:func:`benchmark.protocol_card.compare_cards`: only when the cards are equal)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from benchmark.protocol_card import CARD_FIELDS, compare_cards, describe_card
from benchmark.report.aggregation import counts
from benchmark.report.tables import FamilyTable, Table, esc


def row_comparison(fb: FamilyTable, row: Mapping[str, Any],
                   published: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(comparable, text) for a reproduced row against a publication's card: every run of
    the row must carry a card equal to it."""
    if published is None:
        return False, "not comparable: the publication states no protocol card"
    runs = fb.runs[fb.runs.fingerprint.isin(list(row["fingerprints"]))]
    cards = sorted(set(runs["card"])) if "card" in runs else [""]
    verdicts = [compare_cards(json.loads(c) if c else None, published) for c in cards or [""]]
    for ok, text in verdicts:
        if not ok:
            return False, text
    return True, verdicts[0][1]


def card_table(fb: FamilyTable) -> tuple[Table | None, list[str]]:
    """Field × card: each distinct card of the family's runs (with its number of runs), then
    each distinct card of the family's publications."""
    column = fb.runs["card"] if "card" in fb.runs else [""] * len(fb.runs)
    run_cards = counts(column)  # distinct canonical cards ("" none), most common first
    known = [(c, n) for c, n in run_cards if c]
    unknown = sum(n for c, n in run_cards if not c)
    published: dict[str, list[str]] = {}
    for ref in fb.fam.published:
        if ref.card is not None:
            key = json.dumps(ref.card, sort_keys=True)
            published.setdefault(key, [])
            if ref.source not in published[key]:
                published[key].append(ref.source)
    notes: list[str] = []
    if unknown:
        notes.append(f"{unknown} run record{'s' if unknown != 1 else ''} carr"
                     f"{'y' if unknown != 1 else 'ies'} no protocol card (written before "
                     "cards were recorded): card unknown, never comparable with a "
                     "publication.")
    columns = [(f"runs ({n})" if len(known) == 1 else f"card {i + 1}: {n} run"
                f"{'s' if n != 1 else ''}", json.loads(c)) for i, (c, n) in enumerate(known)]
    columns += [(f"*published*: {esc(src[0].split(':')[0])}", json.loads(c))
                for c, src in published.items()]
    if not columns:
        return None, notes
    rows: dict[str, list[str]] = {}
    for i, (_, card) in enumerate(columns):
        for fld, value in describe_card(card):
            rows.setdefault(fld, ["—"] * len(columns))[i] = value
    rank = {f: i for i, f in enumerate(CARD_FIELDS)}
    t = Table(["field", *(h for h, _ in columns)], text_columns=len(columns) + 1)
    t.rows = [[f"`{fld}`", *(esc(v) for v in rows[fld])]
              for fld in sorted(rows, key=lambda f: (rank.get(f, len(rank)), f))]
    notes.append("A published row's Δ is shown only where the reproduced runs' card equals "
                 "the publication's in every field it states (a field it leaves out, "
                 "\"—\", is not compared).")
    return t, notes

