"""The raw dataset archives, as one data table: where each is published, its size and the
checksum published or catalogued for it, and which prepared splits need it.

``python -m benchmark.prepare FAMILY --download --raw DIR`` fetches a family's archives into
``DIR`` (:mod:`benchmark.acquire.datasets`), extracts them there and converts
``DIR/<raw_subdir>``. A checksum is ``(algorithm, hex digest)``; ``()`` where none is
published or catalogued anywhere we could confirm (the download is then reported
"unverified"). Families with ``login`` steps cannot be fetched without an account: their
archives are the files to place in ``DIR`` by hand (then ``--download`` extracts and converts
them). Every URL and checksum carries the place it was read from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Archive:
    file: str  # the archive's file name in the download folder
    url: str
    size: int | None  # bytes as served; None when not published
    checksums: tuple[tuple[str, str], ...]  # (hashlib algorithm, hex digest)
    splits: tuple[str, ...]  # prepared splits that need this archive


@dataclass(frozen=True)
class RawDataset:
    family: str  # the preparer's name (python -m benchmark.prepare FAMILY)
    splits: tuple[str, ...]  # prepared splits it makes
    archives: tuple[Archive, ...]
    raw_subdir: str  # what the converter reads (its --raw), relative to the download folder
    login: str = ""  # the steps to fetch the archives by hand, when they need an account

    def archives_for(self, splits: list[str] | None) -> list[Archive]:
        """The archives the chosen splits need (all without a choice)."""
        if not splits:
            return list(self.archives)
        return [a for a in self.archives if set(a.splits) & set(splits)]


# torchvision 0.29.1 torchvision/datasets/voc.py DATASET_YEAR_DICT (URL and md5 of each tar);
# sizes as the server sends them (also in several public download scripts).
VOC_HOST = "https://thor.robots.ox.ac.uk/pascal/VOC/"
# naoto0804/cross-domain-detection@e8f48f4 datasets/download.sh (no checksum published)
INOUE = "http://www.hal.t.u-tokyo.ac.jp/~inoue/projects/cross_domain_detection/datasets/"
# cocodataset.org/#download; sha1 as catalogued by dmlc/gluon-cv scripts/datasets/mscoco.py
# (_DOWNLOAD_URLS); sizes as served (e.g. in public COCO download scripts' size checks)
COCO_HOST = "http://images.cocodataset.org/"
# alibaba/easyrobust@b8175b0 benchmarks/coco_o/README.md: "download dataset from here" (Drive)
COCO_O = "https://drive.google.com/file/d/1aBfIJN0zo_i80Hv4p7Ch7M8pRzO37qbq"

VOC07_TRAINVAL = ("voc07_trainval", "voc0712_trainval")
COCO_O_SPLITS = tuple(f"coco_o_{d}" for d in (
    "sketch", "cartoon", "painting", "weather", "handmake", "tattoo"))
CITYSCAPES_LOGIN = """\
Cityscapes needs an account (its licence forbids redistribution):
  1. register at https://www.cityscapes-dataset.com/register/ and log in;
  2. on https://www.cityscapes-dataset.com/downloads/ download {files};
  3. put the zip files, unopened, in {raw};
  4. rerun this command: it checks, extracts and converts them."""
BDD_LOGIN = """\
BDD100K needs an account (its licence forbids redistribution):
  1. register and log in at https://bdd-data.berkeley.edu/ (portal: "Download");
  2. download {files} (100K Images, Detection 2020 Labels);
  3. put the zip files, unopened, in {raw};
  4. rerun this command: it checks, extracts and converts them."""

_CS_FINE = Archive("gtFine_trainvaltest.zip", "https://www.cityscapes-dataset.com/downloads/",
                   None, (), ("cityscapes_train", "cityscapes_val", "foggy_cityscapes_val"))

DATASETS: dict[str, RawDataset] = {d.family: d for d in (
    RawDataset("voc", ("voc07_trainval", "voc12_trainval", "voc0712_trainval", "voc07_test"), (
        Archive("VOCtrainval_06-Nov-2007.tar", VOC_HOST + "voc2007/VOCtrainval_06-Nov-2007.tar",
                460032000, (("md5", "c52e279531787c972589f7e41ab4ae64"),), VOC07_TRAINVAL),
        Archive("VOCtest_06-Nov-2007.tar", VOC_HOST + "voc2007/VOCtest_06-Nov-2007.tar",
                451020800, (("md5", "b6e924de25625d8de591ea690078ad9f"),), ("voc07_test",)),
        Archive("VOCtrainval_11-May-2012.tar", VOC_HOST + "voc2012/VOCtrainval_11-May-2012.tar",
                1999639040, (("md5", "6cd6e144f989b92b3379bac3b3de84fd"),),
                ("voc12_trainval", "voc0712_trainval")),
    ), "VOCdevkit"),
    *(RawDataset(name, (f"{name}_test",), (
        Archive(f"{name}.zip", f"{INOUE}{name}.zip", None, (), (f"{name}_test",)),
    ), name) for name in ("clipart", "watercolor", "comic")),
    RawDataset("coco", ("coco_train2017", "coco_val2017"), (
        Archive("annotations_trainval2017.zip",
                COCO_HOST + "annotations/annotations_trainval2017.zip", 252907541,
                (("sha1", "8551ee4bb5860311e79dace7e79cb91e432e78b3"),),
                ("coco_train2017", "coco_val2017")),
        Archive("val2017.zip", COCO_HOST + "zips/val2017.zip", 815585330,
                (("sha1", "4950dc9d00dbe1c933ee0170f5797584351d2a41"),), ("coco_val2017",)),
        Archive("train2017.zip", COCO_HOST + "zips/train2017.zip", 19336861798,
                (("sha1", "10ad623668ab00c62c096f0ed636d6aff41faca5"),), ("coco_train2017",)),
    ), ""),
    RawDataset("coco_o", COCO_O_SPLITS, (
        Archive("ood_coco.zip", COCO_O, None, (), COCO_O_SPLITS),
    ), "ood_coco"),
    RawDataset("cityscapes", ("cityscapes_train", "cityscapes_val"), (
        _CS_FINE,
        Archive("leftImg8bit_trainvaltest.zip", "https://www.cityscapes-dataset.com/downloads/",
                None, (), ("cityscapes_train", "cityscapes_val")),
    ), "", CITYSCAPES_LOGIN),
    RawDataset("foggy_cityscapes", ("foggy_cityscapes_val",), (
        _CS_FINE,
        Archive("leftImg8bit_trainvaltest_foggy.zip",
                "https://www.cityscapes-dataset.com/downloads/", None, (),
                ("foggy_cityscapes_val",)),
    ), "", CITYSCAPES_LOGIN),
    RawDataset("bdd100k", ("bdd100k_val",), (
        Archive("bdd100k_images_100k.zip", "https://bdd-data.berkeley.edu/", None, (),
                ("bdd100k_val",)),
        Archive("bdd100k_det_20_labels_trainval.zip", "https://bdd-data.berkeley.edu/", None, (),
                ("bdd100k_val",)),
    ), "bdd100k", BDD_LOGIN),
)}


def family_of(split: str) -> str | None:
    """The family whose raw archives make the prepared split ``split`` (None: not in the
    table — a generated split, or one prepared from files of the user's own)."""
    return next((d.family for d in DATASETS.values() if split in d.splits), None)
