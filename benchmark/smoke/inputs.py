"""The smoke test's inputs, in its own roots: every split a few images long and every
weights file of the grid. A prepared split or a weights file that is present is used as it
is (a split through a subset of its images, referenced in place); an absent one is
replaced by a stand-in (:mod:`.standin_data`, :mod:`.standin_weights`), and every
substitution is said."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.split import MANIFEST, load_split, split_dir, write_split
from benchmark.models.checkpoints import catalogue
from benchmark.models.checkpoints.catalogue import WeightsEntry
from benchmark.smoke.standin_data import Sizes, standin_for
from benchmark.spec import RunSpec, parse_corrupted_split_name

INPUTS = "inputs.json"  # in the smoke data root: what each split was made from


class InputError(Exception):
    """A split or weights file the smoke could not provide: ``stage`` and what it concerns."""

    def __init__(self, stage: str, splits: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.stage, self.splits = stage, splits


@dataclass
class Inputs:
    substitutions: list[str] = field(default_factory=list)  # one line each, printed
    weights: dict[str, WeightsEntry] = field(default_factory=dict)  # real name → stand-in
    failed: dict[str, InputError] = field(default_factory=dict)  # split or weights → error


def needed_splits(specs: list[RunSpec]) -> dict[str, int]:
    """Prepared splits the cells read (a corrupted split is made from its base on the fly),
    each with the images it needs: one batch of the largest batch for a training split
    (so RGN has a batch), else the evaluation count (filled in by the caller)."""
    need: dict[str, int] = {}
    for spec in specs:
        need[spec.train_split] = max(need.get(spec.train_split, 0), spec.schedule.batch_size)
        for name in spec.eval_splits:
            parsed = parse_corrupted_split_name(name)
            need.setdefault(parsed[0] if parsed else name, 0)
    return need


def provide_data(need: dict[str, int], eval_images: int, *, real: Path, data: Path, raw: Path,
                 scale: float, log: Callable[[str], None], out: Inputs) -> None:
    """Fill the smoke data root ``data`` with every split of ``need``: a subset of the real
    split under ``real`` where it is prepared, else its stand-in converted from ``raw``."""
    data.mkdir(parents=True, exist_ok=True)
    done = _read_inputs(data)
    standins: dict[str, list[str]] = {}
    for name in sorted(need):
        count = max(need[name], eval_images)
        if (split_dir(name, real) / MANIFEST).is_file():
            source = load_split(name, real, check_images=False)
            key = {"source": "real", "of": source.fingerprint, "images": count}
            if done.get(name) != key or not (split_dir(name, data) / MANIFEST).is_file():
                _subset(source, count, data)
                done[name] = key
            out.substitutions.append(f"split {name}: the real one ({min(count, _n(source))} "
                                     f"of its {_n(source)} images)")
        elif (standin := standin_for(name)) is not None:
            standins.setdefault(standin.dataset, []).append(name)
        else:
            out.failed[name] = InputError("convert", (name,), f"split {name!r} is not prepared "
                                          f"under {real} and has no stand-in")
    train = max([need[s] for names in standins.values() for s in names] + [1])
    sizes = Sizes(train=train, eval=eval_images, scale=scale)
    key = {"source": "standin", "train": sizes.train, "eval": sizes.eval, "scale": scale}
    for dataset, names in standins.items():
        from benchmark.smoke.standin_data import STANDINS

        standin = STANDINS[dataset]
        line = (f"splits {', '.join(names)}: absent; stand-in {dataset} raw layout "
                f"({sizes.train} train / {sizes.eval} eval images"
                + (f", {scale:g} × true size" if scale != 1 else ", true size")
                + f") converted by `prepare {dataset}`")
        if all(done.get(n) == key and (split_dir(n, data) / MANIFEST).is_file() for n in names):
            out.substitutions.append(line)
            continue
        folder = raw / f"{standin.raw_dir}"
        try:
            if not (folder / ".complete").is_file() or _read_key(folder) != key:
                shutil.rmtree(folder, ignore_errors=True)
                standin.generate(folder, sizes)
                (folder / ".complete").write_text(json.dumps(key))
            from benchmark.data.sources import Options

            lines: list[str] = []
            made = standin.convert(folder, Options(root=data, allow_partial=True,
                                                   log=lines.append))
            (data / f"{dataset}.convert.log").write_text("\n".join(lines) + "\n")
        except Exception as e:  # noqa: BLE001 - the converter's failure is the finding
            err = InputError("convert", tuple(names),
                             f"prepare {dataset}: {type(e).__name__}: {e}".splitlines()[0])
            for n in names:
                out.failed[n] = err
            continue
        missing = [n for n in names if n not in {s.name for s in made}]
        for n in missing:
            out.failed[n] = InputError("convert", (n,), f"prepare {dataset} made no split {n!r}")
        for n in names:
            done[n] = key
        out.substitutions.append(line)
    (data / INPUTS).write_text(json.dumps(done, indent=1, sort_keys=True))


def _n(split) -> int:
    return len(split.coco["images"])


def _read_key(folder: Path) -> dict | None:
    try:
        return json.loads((folder / ".complete").read_text())
    except (OSError, ValueError):
        return None


def _read_inputs(data: Path) -> dict:
    try:
        return json.loads((data / INPUTS).read_text())
    except (OSError, ValueError):
        return {}


def _subset(source, count: int, data: Path) -> None:
    """The first ``count`` images of a prepared split (its images read in place)."""
    coco = source.coco
    images = sorted(coco["images"], key=lambda i: i["id"])[:count]
    ids = {i["id"] for i in images}
    sub = {**coco, "images": images,
           "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}
    m = source.manifest
    write_split(source.name, sub, dataset=m.get("dataset", source.name),
                domain=m.get("domain", ""), image_root=source.image_root, root=data,
                extra={"smoke_subset_of": source.fingerprint})


def provide_weights(specs: list[RunSpec], *, real: Path, folder: Path,
                    out: Inputs) -> None:
    """A stand-in entry for every catalogue weights file the cells name that is absent
    under ``real`` (the weights root); present files are used as they are."""
    from benchmark.smoke.standin_weights import standin_entry

    names = sorted({s.backbone.weights for s in specs})
    for name in names:
        entry = catalogue.lookup(name)
        if entry is None:
            continue  # "imagenet" (packaged), "none", or a path: read as it is
        if (real / entry.file).is_file():
            out.substitutions.append(f"weights {name}: the real file ({real / entry.file})")
            continue
        try:
            out.weights[name] = standin_entry(entry, folder)
        except Exception as e:  # noqa: BLE001
            out.failed[name] = InputError("weights", (), f"stand-in of {name}: "
                                          f"{type(e).__name__}: {e}".splitlines()[0])
            continue
        out.substitutions.append(
            f"weights {name}: absent; structure-only stand-in ({entry.architecture}, "
            f"converter {entry.converter}, {entry.pixel_stats.channel_order} statistics, "
            f"random values)")
