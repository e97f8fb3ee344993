"""Per-image matching for the image-level bootstrap, and COCO AP of a resampled image multiset.

COCO AP is not a mean over images, so resampling images means recomputing AP. Rerunning
COCOeval per resample would take tens of seconds each on COCO val; instead the per-image
matching (which detection is a true positive at which IoU threshold, which ground truth is
ignored) is computed once (:func:`match_predictions`, COCOeval's greedy matching, vectorised),
and a resample is just a vector of per-image multiplicities. :class:`WeightedAP` turns such
vectors into AP exactly as ``COCOeval.accumulate`` would on the resampled image multiset
(area "all", 100 detections per image and class, 101-point interpolated precision, classes
without ground truth skipped); the tests check both against pycocotools. The bootstrap
itself is the report's (:mod:`benchmark.report.bootstrap`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100
_EPS = np.spacing(1)


# ---- per-image matches --------------------------------------------------------------------
@dataclass(frozen=True)
class MatchTable:
    """Per-detection match results of one prediction set against one split's ground truth.

    Detections are stored sorted by (class, descending score), ties in COCOeval's order.
    ``gt_count[i, k]`` is the number of non-ignored ground-truth boxes of class ``k`` in
    image ``i``; ``tp``/``ignore`` are (T, N) booleans per IoU threshold.
    """

    image_ids: np.ndarray  # (I,) the split's image ids: the unit that is resampled
    det_image: np.ndarray  # (N,) index into image_ids
    det_class: np.ndarray  # (N,) class index 0..K-1
    tp: np.ndarray  # (T, N) bool
    ignore: np.ndarray  # (T, N) bool
    gt_count: np.ndarray  # (I, K) int
    iou_thresholds: np.ndarray = field(default_factory=lambda: IOU_THRESHOLDS.copy())  # (T,)

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    @property
    def n_classes(self) -> int:
        return self.gt_count.shape[1]

    @classmethod
    def from_arrays(
        cls,
        image_ids: Sequence[int],
        det_image: Sequence[int],
        det_class: Sequence[int],
        det_score: Sequence[float],
        tp: Any,
        gt_count: Any,
        ignore: Any = None,
        iou_thresholds: Sequence[float] | None = None,
    ) -> MatchTable:
        """Build from unsorted per-detection arrays. ``tp``/``ignore`` are (T, N); with one
        row and no ``iou_thresholds`` the row is taken to be IoU 0.5."""
        det_image = np.asarray(det_image, dtype=np.int64)
        det_class = np.asarray(det_class, dtype=np.int64)
        score = np.asarray(det_score, dtype=float)
        tp = np.atleast_2d(np.asarray(tp, dtype=bool))
        ignore = np.zeros_like(tp) if ignore is None else np.atleast_2d(np.asarray(ignore, bool))
        order = np.lexsort((-score, det_class))  # stable: ties keep input order
        if iou_thresholds is None:
            iou_thresholds = IOU_THRESHOLDS if tp.shape[0] == len(IOU_THRESHOLDS) else [0.5]
        thr = np.asarray(iou_thresholds, dtype=float)
        if len(thr) != tp.shape[0]:
            raise ValueError(f"tp has {tp.shape[0]} IoU rows but {len(thr)} thresholds")
        return cls(
            image_ids=np.asarray(image_ids),
            det_image=det_image[order],
            det_class=det_class[order],
            tp=tp[:, order],
            ignore=ignore[:, order],
            gt_count=np.asarray(gt_count, dtype=np.int64),
            iou_thresholds=thr,
        )


def _bbox_iou(det: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' bbox IoU (maskApi ``bbIou``), same float operations in the same order.

    ``det`` (..., 4) and ``gt`` (..., G, 4) as [x, y, w, h]; crowd boxes use the detection's
    area as the union.
    """
    d = det[..., None, :]
    da = d[..., 2] * d[..., 3]
    ga = gt[..., 2] * gt[..., 3]
    w = np.minimum(d[..., 2] + d[..., 0], gt[..., 2] + gt[..., 0])
    w = w - np.maximum(d[..., 0], gt[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], gt[..., 3] + gt[..., 1])
    h = h - np.maximum(d[..., 1], gt[..., 1])
    inter = w * h
    union = np.where(crowd, da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where((w > 0) & (h > 0), iou, 0.0)


def _index_of(known: np.ndarray, values: Sequence[int], what: str) -> np.ndarray:
    """Positions of ``values`` in the sorted ``known`` ids; ValueError for an unknown id."""
    v = np.asarray(values, dtype=np.int64)
    if not len(v):
        return v
    idx = np.searchsorted(known, v)
    bad = (idx >= len(known)) | (known[np.minimum(idx, max(len(known) - 1, 0))] != v
                                 if len(known) else True)
    if np.any(bad):
        first = int(v[np.argmax(np.broadcast_to(bad, v.shape))])
        raise ValueError(f"unknown {what} {first} (not in the ground truth)")
    return idx


def _last_argmax(values: np.ndarray) -> np.ndarray:
    """argmax over the last axis, ties to the last index (COCOeval replaces on equal IoU)."""
    n = values.shape[-1]
    return n - 1 - np.argmax(values[..., ::-1], axis=-1)


def match_predictions(
    gt: Mapping[str, Any], predictions: Sequence[Mapping[str, Any]]
) -> MatchTable:
    """COCOeval's per-image matching (bbox, area "all", 100 detections), vectorised.

    Same semantics as :func:`benchmark.evaluation.coco.coco_summary`: per image and class the
    detections, best score first (stable), greedily take the highest-IoU ground truth with
    IoU ≥ t (ties to the later box), preferring boxes that are not ignored; ``iscrowd`` boxes
    use crowd IoU and can absorb any number of detections; crowd and ``difficult`` boxes are
    ignored (a detection matched to one is neither TP nor FP). Work is grouped by the number
    of ground-truth boxes per (image, class) and done for all groups at once, one detection
    rank at a time.
    """
    image_ids = np.array(sorted(int(i["id"]) for i in gt["images"]), dtype=np.int64)
    class_ids = np.array(sorted(int(c["id"]) for c in gt["categories"]), dtype=np.int64)
    n_img, K = len(image_ids), len(class_ids)
    T = len(IOU_THRESHOLDS)
    anns = gt["annotations"]
    g_img = _index_of(image_ids, [a["image_id"] for a in anns], "image_id")
    g_cls = _index_of(class_ids, [a["category_id"] for a in anns], "category_id")
    g_box = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
    g_crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    g_ig = g_crowd | np.array([bool(a.get("difficult", 0)) for a in anns], dtype=bool)
    gt_count = np.zeros((n_img, K), dtype=np.int64)
    np.add.at(gt_count, (g_img[~g_ig], g_cls[~g_ig]), 1)

    n_det = len(predictions)
    d_img = _index_of(image_ids, [p["image_id"] for p in predictions], "image_id")
    d_cls = _index_of(class_ids, [p["category_id"] for p in predictions], "category_id")
    d_box = np.array([p["bbox"] for p in predictions], dtype=float).reshape(-1, 4)
    d_score = np.array([p["score"] for p in predictions], dtype=float)
    # per (image, class) group: best score first, input order on ties; keep 100
    d_group = d_img * K + d_cls
    order = np.lexsort((np.arange(n_det), -d_score, d_group))
    d_group, d_img, d_cls, d_box, d_score = (
        d_group[order], d_img[order], d_cls[order], d_box[order], d_score[order]
    )
    starts = np.searchsorted(d_group, d_group, side="left")
    rank = np.arange(n_det) - starts
    keep = rank < MAX_DETS
    d_group, d_img, d_cls, d_box, d_score, rank = (
        d_group[keep], d_img[keep], d_cls[keep], d_box[keep], d_score[keep], rank[keep]
    )
    n_det = len(d_group)
    tp = np.zeros((T, n_det), dtype=bool)
    ig = np.zeros((T, n_det), dtype=bool)

    # ground truth per group: not-ignored first, annotation order within
    g_group = g_img * K + g_cls
    g_order = np.lexsort((np.arange(len(anns)), g_ig, g_group))
    g_group, g_box = g_group[g_order], g_box[g_order]
    g_crowd, g_ig = g_crowd[g_order], g_ig[g_order]
    groups, g_start, g_size = np.unique(g_group, return_index=True, return_counts=True)
    det_groups, det_start, det_size = np.unique(d_group, return_index=True, return_counts=True)
    both = np.intersect1d(groups, det_groups, assume_unique=True)
    gi = np.searchsorted(groups, both)
    di = np.searchsorted(det_groups, both)
    sizes = g_size[gi]
    thr = IOU_THRESHOLDS
    bucket = np.ceil(np.log2(np.maximum(sizes, 1))).astype(int)
    for b in np.unique(bucket):
        sel = np.flatnonzero(bucket == b)
        width = int(sizes[sel].max())
        ng = len(sel)
        cols = np.arange(width)
        valid = cols[None, :] < sizes[sel][:, None]
        gidx = np.where(valid, g_start[gi[sel]][:, None] + cols[None, :], 0)
        boxes = g_box[gidx]
        crowd = g_crowd[gidx] & valid
        ignored = g_ig[gidx] & valid
        taken = np.zeros((ng, T, width), dtype=bool)
        first = det_start[di[sel]]
        count = det_size[di[sel]]
        for r in range(int(count.max())):
            act = np.flatnonzero(count > r)
            det = first[act] + r
            iou = _bbox_iou(d_box[det], boxes[act], crowd[act])  # (n, width)
            ok = (iou[:, None, :] >= thr[None, :, None]) & valid[act][:, None, :]
            ok &= ~taken[act] | crowd[act][:, None, :]
            ig_a = ignored[act][:, None, :]
            iou_t = np.broadcast_to(iou[:, None, :], ok.shape)
            reg = ok & ~ig_a
            igm = ok & ig_a
            best_reg = _last_argmax(np.where(reg, iou_t, -1.0))
            best_ig = _last_argmax(np.where(igm, iou_t, -1.0))
            has_reg = reg.any(axis=2)
            has_ig = igm.any(axis=2)
            m = np.where(has_reg, best_reg, best_ig)
            matched = has_reg | has_ig  # (n, T)
            rows, ts = np.nonzero(matched)
            taken[act[rows], ts, m[rows, ts]] = True
            tp[:, det] = (matched & has_reg).T
            ig[:, det] = (matched & ~has_reg).T
    # COCOeval ranks a class's detections over images in id order, then by score (stable)
    return MatchTable.from_arrays(image_ids, d_img, d_cls, d_score, tp, gt_count, ig)


# ---- AP of a resample ---------------------------------------------------------------------
AP_KEYS = ("AP", "AP50", "AP75")
_CHUNK_ELEMENTS = 1_000_000  # resamples × detections per batch (cache-sized; measured)


class WeightedAP:
    """Precomputed layout that turns per-image weights into AP / AP50 / AP75.

    Per IoU threshold only the true positives matter: any other position in a class's ranking
    has the recall of the true positive before it and a lower precision, so it never sets the
    interpolated (right-maximum) precision. False positives enter through one cumulative sum
    of detection weights per class (all detections so far − true positives − ignored ones).
    Resamples are processed in batches (a leading axis), so small tables cost microseconds.
    """

    def __init__(self, table: MatchTable) -> None:
        self.table = table
        self.K = table.n_classes
        class_start = np.searchsorted(table.det_class, np.arange(self.K), side="left")
        self.layouts = [
            _ThresholdLayout(table, ti, class_start) for ti in range(table.tp.shape[0])
        ]

    def __call__(self, weights: np.ndarray | None = None) -> dict[str, float]:
        """AP / AP50 / AP75 for one weight vector (None: every image once)."""
        w = np.ones(self.table.n_images) if weights is None else np.asarray(weights, float)
        out = self.batch(w[None, :])
        return {k: float(out[k][0]) for k in AP_KEYS}

    def batch(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """``weights`` (B, I) → {"AP", "AP50", "AP75"}: arrays of B values."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        n = max(1, len(self.table.det_class))
        step = max(1, _CHUNK_ELEMENTS // n)
        parts = [self._batch(weights[i : i + step]) for i in range(0, len(weights), step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in AP_KEYS}

    def _batch(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        t = self.table
        B, K = len(weights), self.K
        T = len(self.layouts)
        npos = weights @ t.gt_count  # (B, K)
        valid = npos > 0
        safe_npos = np.where(valid, npos, 1.0)
        w_det = weights[:, t.det_image]
        cw = np.zeros((B, w_det.shape[1] + 1))
        np.cumsum(w_det, axis=1, out=cw[:, 1:])
        sums = np.zeros((T, B, K))
        for ti, lay in enumerate(self.layouts):
            if lay.n:
                sums[ti] = lay.ap_sums(w_det, cw, safe_npos, K)
        per_class = sums / len(RECALL_THRESHOLDS)  # (T, B, K)
        n_valid = valid.sum(axis=1)  # (B,)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_t = (per_class * valid[None]).sum(axis=2) / n_valid[None]  # (T, B)
        per_t[:, n_valid == 0] = np.nan
        out = {"AP": per_t.mean(axis=0)}
        for key, thr in (("AP50", 0.5), ("AP75", 0.75)):
            hit = np.flatnonzero(np.isclose(t.iou_thresholds, thr))
            out[key] = per_t[hit[0]] if len(hit) else np.full(B, np.nan)
        return out


class _ThresholdLayout:
    """The true positives of one IoU threshold, in ranking order, with their class segments."""

    def __init__(self, table: MatchTable, ti: int, class_start: np.ndarray) -> None:
        K = table.n_classes
        self.pos = np.flatnonzero(table.tp[ti])  # global ranking positions
        self.n = len(self.pos)
        cls = table.det_class[self.pos]
        self.cls = cls
        seg = np.searchsorted(cls, np.arange(K), side="left")
        self.seg_start = seg[cls]  # first TP of the same class, within self.pos
        self.base = class_start[cls]  # first detection of the same class, global
        self.first = np.zeros(self.n, dtype=bool)
        self.first[seg[seg < self.n]] = True
        self.offset = 2.0 * (K - cls)  # keeps a reverse running max inside each class
        self.ig_pos = np.flatnonzero(table.ignore[ti])
        if len(self.ig_pos):
            # ignored detections ranked at or before each TP, counted from its class start
            self.ig_upto = np.searchsorted(self.ig_pos, self.pos, side="right")
            self.ig_from = np.searchsorted(self.ig_pos, self.base, side="left")

    def ap_sums(
        self, w_det: np.ndarray, cw: np.ndarray, npos: np.ndarray, K: int
    ) -> np.ndarray:
        """(B, K): per class, the sum over the 101 recall thresholds of interpolated precision."""
        B = w_det.shape[0]
        ctp = np.zeros((B, self.n + 1))
        np.cumsum(w_det[:, self.pos], axis=1, out=ctp[:, 1:])
        ctp = ctp[:, 1:] - ctp[:, self.seg_start]
        counted = cw[:, self.pos + 1] - cw[:, self.base]  # detections so far in the class
        if len(self.ig_pos):
            cig = np.zeros((B, len(self.ig_pos) + 1))
            np.cumsum(w_det[:, self.ig_pos], axis=1, out=cig[:, 1:])
            counted = counted - (cig[:, self.ig_upto] - cig[:, self.ig_from])
        prec = ctp / (counted + _EPS)
        env = np.maximum.accumulate((prec + self.offset)[:, ::-1], axis=1)[:, ::-1]
        env -= self.offset
        rec = ctp / npos[:, self.cls]  # a division, like COCOeval: bit-equal recalls
        reach = _recall_reach(rec)
        prev = np.zeros_like(reach)
        prev[:, 1:] = reach[:, :-1]
        prev[:, self.first] = 0
        gain = (reach - prev) * env
        index = (self.cls[None, :] + K * np.arange(B)[:, None]).ravel()
        return np.bincount(index, weights=gain.ravel(), minlength=B * K).reshape(B, K)


def _recall_reach(rec: np.ndarray) -> np.ndarray:
    """Number of COCO recall thresholds ≤ rec (``searchsorted(RECALL_THRESHOLDS, rec,
    "right")``), computed from floor(100·rec) and corrected against the exact threshold
    values, so it is exact and works on any shape."""
    rt = RECALL_THRESHOLDS
    last = len(rt) - 1
    c = np.clip(np.floor(rec * last).astype(np.int64), 0, last)
    c -= (rt[c] > rec) & (c > 0)
    up = np.minimum(c + 1, last)
    c += (c < last) & (rt[up] <= rec)
    return c + 1


def weighted_ap(table: MatchTable, weights: np.ndarray | None = None) -> dict[str, float]:
    """AP / AP50 / AP75 of the image multiset given by ``weights`` (None: every image once)."""
    return WeightedAP(table)(weights)
