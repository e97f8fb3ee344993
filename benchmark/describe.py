"""python -m benchmark.describe --grid G [--input HxW] [--only ...] [--json]: what each cell
will run.

Before a GPU-hour is spent: per cell of the grid (its runs and their parents), the protocol
card (:mod:`benchmark.protocol_card`), the detector's FPN levels and anchors for one input size,
its parameter counts (total / trainable after the recipe's ``configure``), the number of
trainable backbone tensors and each evaluation split's AP protocol. Everything is read off
the detector itself, built with random weights: no data and no weight files are needed (a
cell's weights file is replaced by a random stand-in of the same architecture). Each cell
is printed as soon as it is built.

``--schema DIR`` writes the JSON Schemas of grid and profile files into DIR instead
(:mod:`benchmark.schema`; the committed ones are ``schemas/``).

Exit status 0, or 2 with one error line per problem of a bad grid or input.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.protocol_card import card_of, describe_card, split_protocols
from benchmark.spec import BackboneSpec, RunSpec


# ---- the grid's cells, without data or weight files -------------------------------------------
def grid_cells(name_or_path: str, overrides: Sequence[str] = (),
               only: Sequence[str] = ()) -> tuple[str, list[RunSpec]]:
    """(grid name, cells): the grid expanded and validated, without data or weight files;
    ``overrides`` and ``only`` as ``--set`` and ``--only``."""
    from benchmark.grid import load_grid

    grid = load_grid(name_or_path, resolve_data=False, check_weights=False,
                     overrides=overrides, only=only)
    return grid.title, grid.cells()


# ---- classes ----------------------------------------------------------------------------------
def class_count(spec: RunSpec) -> tuple[int, str]:
    """(number of object classes, where it comes from): the family's dataset class list
    (what its converters write), else the train split's categories (needs the data)."""
    from benchmark.data import demo
    from benchmark.data.sources import common

    lists = {
        "pascal": (common.VOC_CLASSES, "VOC_CLASSES"),
        "cityscapes": (common.CITYSCAPES_CLASSES, "CITYSCAPES_CLASSES"),
        "coco_c": (common.COCO_CLASSES, "COCO_CLASSES"),
        "coco_o": (common.COCO_CLASSES, "COCO_CLASSES"),
        "demo": (demo.CLASSES, "benchmark.data.demo.CLASSES"),
    }
    if spec.family in lists:
        classes, where = lists[spec.family]
        return len(classes), where
    from benchmark.data.split import resolve_split

    split = resolve_split(spec.train_split)
    return len(split.split.coco["categories"]), f"categories of split {spec.train_split!r}"


# ---- the detector, with random weights --------------------------------------------------------
def random_backbone(backbone: BackboneSpec, tmp: Path) -> BackboneSpec:
    """The cell's backbone with random weights of the architecture its weights give (freeze
    point and options kept). A torchvision ResNet from "none" is a different network (trained
    from scratch: GroupNorm, nothing frozen), so it gets a random torchvision-layout file."""
    from benchmark.models.backbones.resnet import TORCHVISION

    if backbone.weights == "none":
        return backbone
    if backbone.name not in TORCHVISION:
        return replace(backbone, weights="none")
    path = tmp / f"{backbone.name}.pth"
    if not path.is_file():
        import torch
        import torchvision

        net = getattr(torchvision.models, TORCHVISION[backbone.name][0])(weights=None)
        torch.save(net.state_dict(), path)
    return replace(backbone, weights=str(path), strict=True)


def build(spec: RunSpec, num_classes: int, tmp: Path) -> Any:
    """The cell's detector as training builds it (engine, the recipe's ``adapt``) with random
    weights, then the recipe's ``configure`` (what trains: DP freezes the body)."""
    from benchmark.models import build_detector
    from benchmark.recipes import get_recipe

    random = replace(spec, backbone=random_backbone(spec.backbone, tmp))
    model = build_detector(random, num_classes)
    recipe = get_recipe(spec.recipe)
    recipe.adapt(model)
    recipe.configure(model, model.state_dict(), None)
    return model


def anchors(model: Any, height: int, width: int, device: str = "cpu") -> dict[str, Any] | None:
    """FPN levels and anchors of a torchvision-engine detector for an ``height × width``
    image, as its eval-mode transform resizes and pads it; None for other engines. On the
    ``meta`` device (a model moved there) only shapes are computed: no arithmetic."""
    import torch

    with torch.no_grad():
        return _anchors(model, height, width, device)


def _anchors(model: Any, height: int, width: int, device: str) -> dict[str, Any] | None:
    import torch

    net = getattr(model, "model", None)
    generator = getattr(getattr(net, "rpn", None), "anchor_generator", None)
    if generator is None:
        return None
    net.eval()
    net.transform.min_size = (model.test_size,)
    images, _ = net.transform([torch.zeros(3, height, width, device=device)])
    feats = list(net.backbone(images.tensors).values())
    all_anchors = generator(images, feats)[0]
    padded = images.tensors.shape[-2]
    levels = []
    for feat, sizes, per_loc in zip(feats, generator.sizes, generator.num_anchors_per_location(),
                                    strict=True):
        h, w = feat.shape[-2:]
        stride = 2 ** round(math.log2(padded / h))  # nominal: ⌈⌉ of odd sizes blurs it
        levels.append({"level": f"p{int(math.log2(stride))}", "stride": stride,
                       "sizes": list(sizes), "count": int(h * w * per_loc)})
    total = sum(x["count"] for x in levels)
    assert total == all_anchors.shape[0], (total, all_anchors.shape)
    return {"input": [height, width], "resized": list(images.image_sizes[0]),
            "levels": levels, "total": total}


def describe_cell(spec: RunSpec, size: tuple[int, int] | None, tmp: Path,
                  cache: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """One cell's description (the JSON object of ``--json``)."""
    n, where = class_count(spec)
    h, w = size or (spec.schedule.test_size, spec.schedule.test_size)
    key = (spec.engine, spec.backbone, spec.recipe, spec.schedule.train_sizes,
           spec.schedule.max_size, spec.schedule.test_size, n, h, w)
    if key not in cache:  # seeds (and evaluation keys) build the same detector
        model = build(spec, n, tmp)
        params = list(model.parameters())
        counts = {"params": {"total": sum(p.numel() for p in params),
                             "trainable": sum(p.numel() for p in params if p.requires_grad)},
                  "trainable_tensors": len(model.body_parameters())}
        try:  # shapes only: a full-size forward of a large backbone takes seconds on a CPU
            geometry = anchors(model.to("meta"), h, w, "meta")
        except (NotImplementedError, RuntimeError):  # an op without a meta kernel
            geometry = anchors(build(spec, n, tmp), h, w)
        cache[key] = {
            "fpn_levels": None if geometry is None else [x["level"] for x in geometry["levels"]],
            "anchors": geometry, **counts,
        }
    return {"label": spec.label, "fingerprint": spec.fingerprint,
            "protocol": card_of(spec).to_json(), "classes": {"count": n, "source": where},
            **cache[key], "splits": split_protocols(spec)}


def describe_cells(cells: list[RunSpec], size: tuple[int, int] | None = None
                   ) -> Iterator[dict[str, Any]]:
    """Each cell's description, yielded as soon as its detector is built."""
    cache: dict[Any, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="describe-") as tmp:
        for spec in cells:
            yield describe_cell(spec, size, Path(tmp), cache)


def describe_grid(grid: str, size: tuple[int, int] | None = None, *,
                  overrides: Sequence[str] = (), only: Sequence[str] = ()) -> dict[str, Any]:
    """``{"grid": name, "cells": [...]}`` for every cell of ``grid``."""
    name, cells = grid_cells(grid, overrides, only)
    return {"grid": name, "cells": list(describe_cells(cells, size))}


# ---- text -------------------------------------------------------------------------------------
def format_cell(i: int, n: int, cell: dict[str, Any]) -> str:
    lines = [f"cell {i}/{n}  {cell['fingerprint']}  {cell['label']}"]
    card = "; ".join(f"{k} {v}" for k, v in describe_card(cell["protocol"]))
    lines.append(f"  protocol: {card}")
    lines.append(f"  classes: {cell['classes']['count']} ({cell['classes']['source']})")
    a = cell["anchors"]
    if a is None:
        lines.append("  anchors: not inspectable for this engine")
    else:
        lines.append(f"  input {a['input'][0]}×{a['input'][1]} → {a['resized'][0]}×"
                     f"{a['resized'][1]}; FPN levels {' '.join(cell['fpn_levels'])}")
        per = ", ".join(f"{x['level']} (stride {x['stride']}, sizes "
                        f"{'/'.join(map(str, x['sizes']))}) {x['count']:,}" for x in a["levels"])
        lines.append(f"  anchors: {per}; total {a['total']:,}")
    p = cell["params"]
    lines.append(f"  params: {p['total']:,} total, {p['trainable']:,} trainable; "
                 f"{cell['trainable_tensors']} trainable backbone tensors")
    lines.append("  splits: " + ", ".join(f"{s} {pr}" for s, pr in cell["splits"].items()))
    return "\n".join(lines)


def parse_input(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if not m or not int(m.group(1)) or not int(m.group(2)):
        raise argparse.ArgumentTypeError(f"{text!r}: expected HxW, e.g. 800x1216")
    return int(m.group(1)), int(m.group(2))


def main(argv: Sequence[str] | None = None) -> int:
    from benchmark.commandline import add_grid_selection, parser

    ap = parser("python -m benchmark.describe", __doc__,
                description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
                example="python -m benchmark.describe --grid mind_back_pascal --input 800x1216 "
                        "--only backbone=resnet50,seed=0",
                exits="0 described; 2 invalid grid, input size or arguments (one line each)")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--grid", help="grid name (benchmark/grids/NAME.yaml) or path")
    what.add_argument("--schema", type=Path, metavar="DIR",
                      help="write grid.schema.json and profile.schema.json (the JSON Schemas "
                           "of grid and profile files, for editors) into DIR; the committed "
                           "ones are schemas/")
    add_grid_selection(ap)
    ap.add_argument("--input", type=parse_input, metavar="HxW",
                    help="image size for the anchor count (default: test_size square)")
    ap.add_argument("--json", action="store_true", help='print {"cells": [...]} as JSON')
    args = ap.parse_args(argv)
    if args.schema is not None:
        from benchmark.schema import write_schemas

        for path in write_schemas(args.schema):
            print(path)
        return 0
    try:
        name, cells = grid_cells(args.grid, args.overrides, args.only)
        if args.json:
            print(json.dumps({"grid": name, "cells": list(describe_cells(cells, args.input))},
                             indent=1))
            return 0
        print(f"grid {name!r}: {len(cells)} cells", flush=True)
        for i, cell in enumerate(describe_cells(cells, args.input), 1):
            print(format_cell(i, len(cells), cell), flush=True)
    except BenchmarkError as e:
        for line in str(e).splitlines():
            print(f"error: {' '.join(line.split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
