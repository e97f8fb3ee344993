"""Non-photographic renderings of a photo: the demo's out-of-distribution domains.

Each style maps an RGB uint8 image to an RGB uint8 image of the same shape, deterministically
(OpenCV's filters use no random numbers) and, with OpenCV pinned to its baseline code, the same
on every x86-64 CPU (:func:`benchmark.data.isa.pin_opencv`; IPP's and the AVX builds of
``cv2.stylization`` round differently). OpenCV works in BGR, so we convert both ways.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from benchmark.data.isa import pin_opencv

Style = Callable[[np.ndarray], np.ndarray]


def _bgr(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., ::-1])


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., ::-1])


def stylized(image: np.ndarray) -> np.ndarray:
    """Watercolour-like abstraction (``cv2.stylization``)."""
    pin_opencv()
    return _rgb(cv2.stylization(_bgr(image), sigma_s=60, sigma_r=0.45))


def sketch(image: np.ndarray) -> np.ndarray:
    """Coloured pencil sketch (the colour output of ``cv2.pencilSketch``)."""
    pin_opencv()
    _, colour = cv2.pencilSketch(_bgr(image), sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    return _rgb(colour)


def inked(image: np.ndarray, *, levels: int = 4) -> np.ndarray:
    """Cartoon: edge-preserving smoothing, colour quantised to ``levels`` per channel, and
    black Canny ink lines."""
    pin_opencv()
    smooth = cv2.edgePreservingFilter(_bgr(image), flags=cv2.RECURS_FILTER, sigma_s=60, sigma_r=0.4)
    step = 256 // levels
    flat = (smooth // step) * step + step // 2
    edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_BGR2GRAY), 60, 140)
    flat[edges > 0] = 0
    return _rgb(flat.astype(np.uint8))


STYLES: dict[str, Style] = {"stylized": stylized, "sketch": sketch, "inked": inked}
