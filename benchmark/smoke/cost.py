"""The cost sheet of a real grid from its smoke test: every training's iterations (and its
RGN / importance batches) at its kind's measured seconds per iteration, every evaluation's
images at its kind's seconds per image → device-hours; final checkpoints and predictions →
disk. Image counts are the prepared splits' where they are present, else the published
ones (:data:`benchmark.data.sources.EXPECTED_IMAGES`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from benchmark.smoke.cell import KindResult
from benchmark.smoke.kinds import kind_of
from benchmark.spec import RunSpec, parse_corrupted_split_name


@dataclass
class CostSheet:
    cells: int = 0
    trainings: int = 0
    evaluations: int = 0
    iterations: int = 0
    train_s: float = 0.0
    measure_batches: int = 0
    measure_s: float = 0.0
    eval_images: int = 0
    eval_s: float = 0.0
    checkpoint_bytes: int = 0
    prediction_bytes: int = 0
    unknown: list[str] = field(default_factory=list)  # what could not be costed, and why

    @property
    def hours(self) -> float:
        return (self.train_s + self.measure_s + self.eval_s) / 3600


def grid_cost(cells: list[RunSpec], measured: dict[str, KindResult],
              images: Callable[[str], int | None], img_per_s: float | None = None) -> CostSheet:
    """``measured``: kind label → its smoke result; ``images``: a split's image count."""
    from benchmark.recipes import get_recipe

    sheet = CostSheet(cells=len(cells))
    trained: set[str] = set()
    evaluated: set[tuple[str, str]] = set()
    for spec in cells:
        label = kind_of(spec).label
        result = measured.get(label)
        recipe = get_recipe(spec.recipe)
        if recipe.trains and spec.train_fingerprint not in trained:
            trained.add(spec.train_fingerprint)
            sheet.trainings += 1
            s_iter = (spec.schedule.batch_size / img_per_s if img_per_s else
                      result.s_per_iter if result is not None else None)
            n_train = images(spec.train_split)
            per_epoch = n_train // spec.schedule.batch_size if n_train else 0
            n = min(spec.schedule.rgn_batches, per_epoch)
            m = min(spec.schedule.importance_batches, per_epoch) if recipe.needs_importance \
                else n
            batches = n + (m if m != n else 0)
            sheet.iterations += spec.schedule.iterations
            sheet.measure_batches += batches
            if s_iter is None:
                sheet.unknown.append(f"training of {label}: no measured s/iter")
            else:
                sheet.train_s += spec.schedule.iterations * s_iter
                sheet.measure_s += batches * s_iter
            if n_train is None:
                sheet.unknown.append(f"{spec.train_split}: image count unknown (RGN batches)")
            if result is not None:
                sheet.checkpoint_bytes += result.checkpoint_bytes
        key = (spec.train_fingerprint, spec.eval_fingerprint)
        if key in evaluated:
            continue
        evaluated.add(key)
        sheet.evaluations += 1
        n_eval = 0
        for name in spec.eval_splits:
            parsed = parse_corrupted_split_name(name)
            count = images(parsed[0] if parsed else name)
            if count is None:
                sheet.unknown.append(f"{name}: image count unknown")
            else:
                n_eval += count
        sheet.eval_images += n_eval
        if result is None or result.s_per_image is None:
            sheet.unknown.append(f"evaluation of {label}: no measured s/image")
            continue
        sheet.eval_s += n_eval * result.s_per_image
        sheet.prediction_bytes += round(n_eval * result.prediction_bytes / result.eval_images)
    sheet.unknown = list(dict.fromkeys(sheet.unknown))
    return sheet


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def format_cost(grid: str, sheet: CostSheet, device: str, img_per_s: float | None) -> str:
    how = (f"at {img_per_s:g} training images/s (--img-per-s)" if img_per_s
           else f"at the s/iter measured here ({device})")
    lines = [
        f"cost sheet of grid {grid!r}: {sheet.cells} cells, {sheet.trainings} trainings, "
        f"{sheet.evaluations} evaluations",
        f"  training     {sheet.iterations:>14,} iterations         "
        f"{sheet.train_s / 3600:>12,.1f} device-hours {how}",
        f"  RGN/importance {sheet.measure_batches:>12,} batches            "
        f"{sheet.measure_s / 3600:>12,.1f} device-hours",
        f"  evaluation   {sheet.eval_images:>14,} images             "
        f"{sheet.eval_s / 3600:>12,.1f} device-hours at the s/image measured here",
        f"  total                                          {sheet.hours:>12,.1f} device-hours",
        f"  disk: final checkpoints {_size(sheet.checkpoint_bytes)} + predictions "
        f"{_size(sheet.prediction_bytes)} = "
        f"{_size(sheet.checkpoint_bytes + sheet.prediction_bytes)}"
        " (a running training also keeps two resumable checkpoints with optimizer state)",
    ]
    if sheet.unknown:
        shown = "; ".join(sheet.unknown[:4])
        more = f" and {len(sheet.unknown) - 4} more" if len(sheet.unknown) > 4 else ""
        lines.append(f"  not costed: {shown}{more}")
    return "\n".join(lines)
