"""Writers of each raw dataset's on-disk format, as its publisher lays it out: VOC XML and
image sets, Cityscapes ``gtFine`` polygons, COCO ``instances_*.json`` trees, BDD100K label
JSON, and the images. The smoke test's stand-in datasets and the converters' tests build
their raw trees with these, so both exercise the same layouts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

#: scikit-image sample pictures the images are resized from (real photographs, so decoding
#: and corrupting them costs what a dataset image costs)
PICTURES = ("astronaut", "chelsea", "coffee")


def picture(name: str = "astronaut"):
    from skimage import data as skdata

    return getattr(skdata, name)()


def save_jpeg(path: Path, w: int, h: int, src: Any = None, *, quality: int = 80,
              source: str = "astronaut") -> None:
    """A ``w`` × ``h`` JPEG resized from ``src`` (an RGB array) or a sample picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(picture(source) if src is None else src).resize((w, h))
    img.save(path, format="JPEG", quality=quality)


def save_png(path: Path, w: int, h: int, *, source: str = "chelsea", mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture(source)).resize((w, h)).convert(mode).save(path, format="PNG")


# ---- Pascal VOC (also Clipart1k, Watercolor2k, Comic2k) ----------------------------------------
def voc_object(name: str, box: tuple | None, difficult: int | str = 0,
               truncated: int = 0) -> str:
    """One ``<object>``: ``box`` is (xmin, ymin, xmax, ymax), 1-based inclusive; None: no
    ``<bndbox>``."""
    bb = (
        ""
        if box is None
        else (
            "<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>".format(
                *box
            )
        )
    )
    return (
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>{truncated}</truncated>"
        f"<difficult>{difficult}</difficult>{bb}</object>"
    )


def write_voc_xml(path: Path, size: tuple[int, int] | None, objects: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sz = (
        ""
        if size is None
        else (f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    )
    path.write_text(
        f"<annotation><folder>VOC</folder><filename>{path.stem}.jpg</filename>{sz}"
        + "\n".join(objects)
        + "</annotation>\n"
    )


def write_image_set(ds: Path, name: str, ids: list[str]) -> None:
    f = ds / "ImageSets" / "Main" / f"{name}.txt"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(f"{i}\n" for i in ids))


def add_voc_image(
    ds: Path,
    image_id: str,
    size: tuple[int, int],
    objects: list[str],
    xml_size: tuple[int, int] | None | str = "same",
    *,
    source: str = "astronaut",
) -> None:
    """``JPEGImages/<id>.jpg`` and ``Annotations/<id>.xml`` of one image."""
    save_jpeg(ds / "JPEGImages" / f"{image_id}.jpg", *size, source=source)
    write_voc_xml(
        ds / "Annotations" / f"{image_id}.xml", size if xml_size == "same" else xml_size, objects
    )  # type: ignore[arg-type]


# ---- Cityscapes -------------------------------------------------------------------------------
def rect_polygon(x0: int, y0: int, x1: int, y1: int) -> list[list[int]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def write_cityscapes_polygons(raw: Path, split: str, stem: str, objects: list,
                              size: tuple[int, int] | None) -> None:
    """``gtFine/<split>/<city>/<stem>_gtFine_polygons.json`` (``stem`` = ``<city>/<name>``)."""
    path = raw / "gtFine" / split / f"{stem}_gtFine_polygons.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict = {"objects": objects}
    if size is not None:
        doc.update(imgWidth=size[0], imgHeight=size[1])
    path.write_text(json.dumps(doc, indent=2))


def write_cityscapes_instance_ids(raw: Path, split: str, stem: str, size: tuple[int, int],
                                  instances: list[tuple[int, list[list[int]]]]) -> None:
    """``gtFine/<split>/<stem>_gtFine_instanceIds.png``: 16-bit ids, ``label id × 1000 +
    instance`` inside each polygon (cityscapesScripts' encoding); the converter reads the
    polygons, the file completes the layout."""
    from PIL import ImageDraw

    img = Image.new("I;16", size, 0)
    draw = ImageDraw.Draw(img)
    for value, polygon in instances:
        draw.polygon([tuple(p) for p in polygon], fill=value)
    path = raw / "gtFine" / split / f"{stem}_gtFine_instanceIds.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")


# ---- COCO 2017 and COCO-O ---------------------------------------------------------------------
def write_coco_tree(base: Path, split: str, doc: dict, *, quality: int = 70) -> None:
    """``annotations/instances_<split>.json`` and a JPEG for every image of ``doc`` under
    ``<split>/``."""
    ann = base / "annotations" / f"instances_{split}.json"
    ann.parent.mkdir(parents=True, exist_ok=True)
    ann.write_text(json.dumps(doc))
    for img in doc["images"]:
        save_jpeg(base / split / img["file_name"], img["width"], img["height"], quality=quality)


# ---- BDD100K ----------------------------------------------------------------------------------
def bdd_box(x1: float, y1: float, x2: float, y2: float) -> dict:
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def write_bdd100k(raw: Path, frames: list[dict], *, size: tuple[int, int] = (1280, 720)) -> Path:
    """``images/100k/val/<name>`` for every frame and ``labels/det_20/det_val.json`` (the
    2020 Scalabel format); returns the label file."""
    for frame in frames:
        save_jpeg(raw / "images" / "100k" / "val" / frame["name"], *size, quality=70,
                  source="coffee")
    labels = raw / "labels" / "det_20" / "det_val.json"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text(json.dumps(frames))
    return labels
