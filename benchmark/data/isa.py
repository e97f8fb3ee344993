"""Image operations whose results do not depend on the CPU's SIMD extensions.

The generated demo data and the corrupted splits are content-fingerprinted inputs, so their
pixels must be the same on every x86-64 machine. Two kinds of code made them differ between
an AVX2 and an AVX-512 CPU:

* OpenCV picks kernels at run time (its own SSE4.1 ... AVX-512 builds, and Intel IPP with its
  own CPU dispatch), and these round floats differently: frost's cubic resize of the frost
  texture, defocus blur's ``filter2D``, snow's float ``cvtColor``, ``cv2.stylization``.
  :func:`pin_opencv` keeps OpenCV on its baseline code (SSE3, the same instructions on every
  x86-64 CPU) and off IPP.
* numpy's float64 ``exp`` (and ``log``, ``power``, ...) has an AVX-512 implementation whose
  last bit differs from the scalar one. That changes the Gaussian weights of imagecorruptions'
  motion blur (``gauss_function``: motion_blur, snow) and of ``skimage.filters.gaussian``
  (scipy's kernel: gaussian_blur, glass_blur, spatter, elastic_transform). :func:`gauss_function`
  and :func:`gaussian` are those definitions with the exponential computed by :func:`exp`, in
  software.

Everything else on these paths is either integer arithmetic or elementwise IEEE arithmetic
(``+ - * /``, ``sqrt``, pairwise sums), which gives the same bits at every SIMD width.
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np

_EXP_DIGITS = 40  # rounded to 40 significant digits, then to the nearest double


def pin_opencv() -> None:
    """Keep OpenCV on its baseline code path and off IPP, for this process and thread.

    Call it in the thread that calls OpenCV, before the call: ``setUseOptimized`` is
    process-wide, but whether IPP is used is a per-thread flag (a new thread starts with IPP on).
    Both are cheap to set again.
    """
    if cv2.useOptimized():
        cv2.setUseOptimized(False)
    cv2.ipp.setUseIPP(False)


@functools.lru_cache(maxsize=65536)
def _exp(x: float) -> float:
    return float(decimal.Decimal(x).exp(decimal.Context(prec=_EXP_DIGITS)))


def exp(values: Any) -> np.ndarray:
    """Elementwise ``e**x`` as float64, from the decimal module (integer arithmetic only).

    Correctly rounded unless ``e**x`` lies within about 1e-40 (relative) of the midpoint between
    two doubles, so it agrees with a good libm nearly always, and it is the same on every CPU.
    Meant for small arrays (filter taps).
    """
    arr = np.asarray(values, dtype=np.float64)
    out = np.fromiter((_exp(float(v)) for v in arr.ravel()), dtype=np.float64, count=arr.size)
    return out.reshape(arr.shape)


def gauss_function(x: Any, mean: Any, sigma: Any) -> np.ndarray:
    """imagecorruptions' ``gauss_function`` (the motion-blur taps), with :func:`exp`."""
    return exp(-((x - mean) ** 2) / (2 * (sigma**2))) / (np.sqrt(2 * np.pi) * sigma)


def gaussian_kernel1d(sigma: float, radius: int) -> np.ndarray:
    """scipy.ndimage's order-0 Gaussian taps (``_gaussian_kernel1d``), with :func:`exp`."""
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi_x = exp(-0.5 / sigma2 * x**2)
    return phi_x / phi_x.sum()


def gaussian(
    image: Any,
    sigma: float | Iterable[float] = 1.0,
    *,
    mode: str = "nearest",
    cval: float = 0.0,
    truncate: float = 4.0,
    channel_axis: int | None = None,
) -> np.ndarray:
    """``skimage.filters.gaussian`` of a float image (``preserve_range=False``), with the taps of
    :func:`gaussian_kernel1d`: scipy's ``gaussian_filter``, one ``correlate1d`` per axis, in the
    same order and dtypes."""
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"gaussian: expected a float image, got {image.dtype}")
    if image.dtype == np.float16:
        image = image.astype(np.float32)
    if channel_axis is not None:
        sigmas = [sigma] * (image.ndim - 1) if not isinstance(sigma, Iterable) else list(sigma)
        if len(sigmas) == image.ndim - 1:
            sigmas.insert(channel_axis % image.ndim, 0)
    else:
        sigmas = [sigma] * image.ndim if not isinstance(sigma, Iterable) else list(sigma)
    if len(sigmas) != image.ndim:
        raise ValueError(f"gaussian: {len(sigmas)} sigmas for a {image.ndim}-d image")
    if any(s < 0 for s in sigmas):
        raise ValueError("Sigma values less than zero are not valid")
    from scipy import ndimage  # 0.3 s to import: only where an image is filtered

    output = np.zeros(image.shape, dtype=image.dtype)
    source = image
    filtered = False
    for axis, s in enumerate(sigmas):
        if s > 1e-15:
            radius = int(truncate * float(s) + 0.5)
            weights = gaussian_kernel1d(s, radius)[::-1]
            ndimage.correlate1d(source, weights, axis, output, mode, cval, 0)
            source, filtered = output, True
    if not filtered:
        output[...] = image
    return output
