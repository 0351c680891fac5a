"""The network's perceptual hash: goimagehash v1.1.0 ``PerceptionHash`` in numpy.

Nodes commit to these hashes, the Task contract compares them and the Relay checks
uploaded images against them, so this must agree with the Go code bit for bit. The
pipeline, reproduced step by step:

1. decode the PNG into the ``image`` type Go's decoder would pick (RGBA, NRGBA, Gray,
   Gray16, RGBA64, NRGBA64 or Paletted), since nfnt/resize and ``RGBA()`` round
   differently for each;
2. nfnt/resize ``Resize(64, 64, img, Bilinear)``: a separable triangle filter whose
   support widens with the scale factor, integer weights (``int16(k*256)`` for 8-bit
   images, ``int32(k*65536)`` for 16-bit ones), truncating division by the weight sum
   and a clamped intermediate image between the horizontal and vertical passes (an
   image that is already 64x64 is returned untouched);
3. grey = ``0.299*(r/257) + 0.587*(g/257) + 0.114*(b/256)`` on the 16-bit,
   alpha-premultiplied values of ``color.RGBA()``, in integer division, as goimagehash
   writes it;
4. goimagehash's unnormalised recursive DCT-II (Byeong Gi Lee's algorithm with static
   tables), rows then columns; the tables hold Go's ``math.Cos`` results, which differ
   from correctly rounded cosines in the last bit for 21 of the 63 entries, so Go's
   Cephes-based cosine is ported too;
5. the "median" of the top-left 8x8 coefficients from goimagehash's quickselect: it
   returns ``s[31]/2 + s[32]/2`` of the sorted values (the mean of the two middle
   values, halved before adding), not the single element ``s[32]``;
6. bit ``63 - i`` set when coefficient ``i`` (row-major) is greater than that median.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = [
    "HASH_SIZE",
    "PNG_SIGNATURE",
    "hamming",
    "phash",
    "result_bytes",
    "similar",
]

HASH_SIZE = 8
"""Bytes in one image's hash (a big-endian uint64)."""

_SIDE = 64  # goimagehash resizes to 64x64 before the DCT
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The 8 bytes every PNG file starts with."""

_FloatArray = NDArray[np.float64]
_IntArray = NDArray[np.int64]


# --------------------------------------------------------------------------- decoding


class _GoType(Enum):
    """The concrete ``image.Image`` type Go's PNG decoder returns."""

    RGBA = "RGBA"  # 8-bit truecolour without tRNS
    NRGBA = "NRGBA"  # 8-bit with alpha (RGBA, grey+alpha, or a tRNS colour key)
    GRAY = "Gray"  # 1/2/4/8-bit greyscale without tRNS
    GRAY16 = "Gray16"
    RGBA64 = "RGBA64"  # 16-bit truecolour without tRNS
    NRGBA64 = "NRGBA64"
    PALETTED = "Paletted"


@dataclass(frozen=True)
class _Decoded:
    """Pixels as Go holds them after decoding.

    ``colour`` is (C, H, W) with C = 1 (grey) or 3, straight (not premultiplied)
    values as in Go's ``Pix`` arrays; ``alpha`` is (H, W) for the types that carry
    one; ``bits`` is 8 or 16.
    """

    kind: _GoType
    colour: NDArray[np.integer]
    alpha: NDArray[np.integer] | None
    bits: int


def _png_header(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from the IHDR chunk."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG image: the data does not start with the PNG signature")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("not a decodable PNG image: the IHDR chunk is missing")
    return data[24], data[25]


def _decode(data: bytes) -> _Decoded:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"image must be PNG bytes, got {type(data).__name__}")
    data = bytes(data)
    depth, colour_type = _png_header(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            image.load()
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise ValueError(f"not a decodable PNG image: {exc}") from exc
    return _as_go_image(image, depth, colour_type)


def _with_alpha(kind: _GoType, rgba: NDArray[np.integer], bits: int) -> _Decoded:
    return _Decoded(kind, rgba[..., :3].transpose(2, 0, 1), rgba[..., 3], bits)


def _as_go_image(image: Image.Image, depth: int, colour_type: int) -> _Decoded:
    """Mirror Go's choice of image type; Pillow supplies the pixels.

    Pillow reduces 16-bit colour PNGs to 8 bits, so those are widened (v * 257) and
    hash like their 8-bit version, which may differ from Go in a bit; 16-bit grey and
    everything 8-bit are exact.
    """
    keyed = "transparency" in image.info  # a tRNS chunk turns Go's result into NRGBA
    if colour_type == 3:
        # Paletted: At() answers with the palette entry (alpha from tRNS).
        return _with_alpha(_GoType.PALETTED, np.asarray(image.convert("RGBA")), 8)
    if colour_type == 0 and not keyed:
        grey = np.asarray(image)
        if depth == 16:
            return _Decoded(_GoType.GRAY16, grey[None].astype(np.int64), None, 16)
        if image.mode == "1":
            grey = grey.astype(np.uint8) * 255  # Pillow gives 0/1, Go scales to 0/255
        return _Decoded(_GoType.GRAY, grey[None], None, 8)
    if colour_type == 2 and not keyed:
        rgb = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
        if depth == 16:
            return _Decoded(_GoType.RGBA64, rgb.astype(np.int64) * 257, None, 16)
        return _Decoded(_GoType.RGBA, rgb, None, 8)
    if colour_type == 0 and depth == 16:
        grey = np.asarray(image).astype(np.int64)
        alpha = np.where(grey == int(image.info["transparency"]), 0, 0xFFFF)
        return _Decoded(_GoType.NRGBA64, np.stack([grey, grey, grey]), alpha, 16)
    rgba = np.asarray(image.convert("RGBA"))
    if depth == 16:
        return _with_alpha(_GoType.NRGBA64, rgba.astype(np.int64) * 257, 16)
    return _with_alpha(_GoType.NRGBA, rgba, 8)


# ------------------------------------------------------------------------ resampling


@cache
def _weights(out_size: int, in_size: int, bits: int) -> tuple[_FloatArray, _FloatArray]:
    """nfnt's createWeights8/16 for the Bilinear kernel, folded into a dense matrix.

    Returns (matrix of shape (in_size, out_size), weight sum of each output), integers
    held in float64. Taps outside the image are clamped to the edge pixel, so their
    weights add up there.
    """
    scale = in_size / out_size  # float64(old) / float64(new), as calcFactors does
    taps = 2 * int(max(math.ceil(scale), 1))
    factor = min(1.0 / scale, 1.0)
    one = 256 if bits == 8 else 65536  # int16(k*256) or int32(k*65536)
    matrix = np.zeros((in_size, out_size), dtype=np.float64)
    for y in range(out_size):
        centre = scale * (float(y) + 0.5) - 0.5
        start = int(centre) - taps // 2 + 1  # int() truncates toward zero, like Go
        centre -= float(start)
        for i in range(taps):
            distance = abs((centre - float(i)) * factor)
            if distance <= 1.0:
                matrix[min(max(start + i, 0), in_size - 1), y] += int((1.0 - distance) * one)
    return matrix, matrix.sum(axis=0)


# Multiply-adds per BLAS call: small enough that OpenBLAS stays on one thread, whose
# start-up costs more than it saves here and stalls badly on a busy machine.
_GEMM_CHUNK = 1 << 18


def _filter(samples: NDArray[np.generic], out_size: int, bits: int) -> _FloatArray:
    """One nfnt pass along the last axis of integer samples (integers in float64).

    Exact: every product and partial sum is an integer far below 2**53, so BLAS may
    add them in any order; floor division truncates as Go's does for values >= 0.
    """
    matrix, sums = _weights(out_size, samples.shape[-1], bits)
    flat = np.ascontiguousarray(samples, dtype=np.float64).reshape(-1, samples.shape[-1])
    acc = np.empty((flat.shape[0], out_size))
    step = max(1, _GEMM_CHUNK // (flat.shape[1] * out_size))
    for row in range(0, flat.shape[0], step):
        np.matmul(flat[row : row + step], matrix, out=acc[row : row + step])
    result = np.clip(np.floor_divide(acc, sums), 0, (1 << bits) - 1)
    return result.reshape(*samples.shape[:-1], out_size)


def _nrgba_rgba16(decoded: _Decoded) -> _IntArray:
    """``color.NRGBA.RGBA()``: 16-bit premultiplied colour channels."""
    assert decoded.alpha is not None
    return decoded.colour.astype(np.int64) * 0x101 * decoded.alpha // 0xFF


def _first_pass_samples(decoded: _Decoded) -> tuple[NDArray[np.integer], int]:
    """Colour samples (C, H, W) as nfnt's first pass reads them, and their bit depth."""
    colour, alpha = decoded.colour, decoded.alpha
    if decoded.kind is _GoType.NRGBA:
        assert alpha is not None
        return colour.astype(np.int64) * alpha // 0xFF, 8  # resizeNRGBA: c * a / 0xff
    if decoded.kind is _GoType.NRGBA64:
        assert alpha is not None
        return colour.astype(np.int64) * alpha // 0xFFFF, 16
    if decoded.kind is _GoType.PALETTED:
        return _nrgba_rgba16(decoded), 16  # resizeGeneric reads At().RGBA()
    return colour, decoded.bits


def _resized_rgb16(decoded: _Decoded) -> _IntArray:
    """The 64x64 colour that ``RGBA()`` reports on nfnt's output, shape (C, 64, 64)."""
    if decoded.colour.shape[1:] == (_SIDE, _SIDE):
        # nfnt returns the input itself, so RGBA() of the decoded type applies.
        if decoded.kind in (_GoType.NRGBA, _GoType.PALETTED):
            return _nrgba_rgba16(decoded)
        if decoded.kind is _GoType.NRGBA64:
            assert decoded.alpha is not None
            return decoded.colour.astype(np.int64) * decoded.alpha // 0xFFFF
        return decoded.colour.astype(np.int64) * (0x101 if decoded.bits == 8 else 1)
    samples, bits = _first_pass_samples(decoded)
    # Horizontal pass (nfnt stores it transposed), then the vertical pass on that.
    temp = _filter(samples, _SIDE, bits)  # (C, H, 64)
    result = _filter(temp.transpose(0, 2, 1), _SIDE, bits).transpose(0, 2, 1)
    return result.astype(np.int64) * (0x101 if bits == 8 else 1)


def _grey(rgb16: _IntArray) -> _FloatArray:
    """goimagehash's pixel2Gray on 16-bit channels (a grey image repeats its channel)."""
    if rgb16.shape[0] == 1:
        r = g = b = rgb16[0]
    else:
        r, g, b = rgb16[0], rgb16[1], rgb16[2]
    # Same operand order as the Go expression, so the float64 rounding matches.
    return (0.299 * (r // 257) + 0.587 * (g // 257)) + 0.114 * (b // 256)


# ------------------------------------------------------------------------------ DCT


def _go_cos(x: float) -> float:
    """Go's ``math.Cos`` (Cephes) for 0 <= x < 2**29, without fused multiply-adds."""
    pi4a = 7.85398125648498535156e-1
    pi4b = 3.77489470793079817668e-8
    pi4c = 2.69515142907905952645e-15
    four_over_pi = float.fromhex("0x1.45f306dc9c883p+0")  # Go's constant 4/Pi, rounded once
    sin_c = (
        1.58962301576546568060e-10,
        -2.50507477628578072866e-8,
        2.75573136213857245213e-6,
        -1.98412698295895385996e-4,
        8.33333333332211858878e-3,
        -1.66666666666666307295e-1,
    )
    cos_c = (
        -1.13585365213876817300e-11,
        2.08757008419747316778e-9,
        -2.75573141792967388112e-7,
        2.48015872888517045348e-5,
        -1.38888888888730564116e-3,
        4.16666666666665929218e-2,
    )
    j = int(x * four_over_pi)
    y = float(j)
    if j & 1:
        j += 1
        y += 1
    j &= 7
    z = ((x - y * pi4a) - y * pi4b) - y * pi4c
    negative = False
    if j > 3:
        j -= 4
        negative = not negative
    if j > 1:
        negative = not negative
    zz = z * z
    if j in (1, 2):
        p = (((((sin_c[0] * zz) + sin_c[1]) * zz + sin_c[2]) * zz + sin_c[3]) * zz + sin_c[4]) * zz + sin_c[5]
        value = z + z * zz * p
    else:
        p = (((((cos_c[0] * zz) + cos_c[1]) * zz + cos_c[2]) * zz + cos_c[3]) * zz + cos_c[4]) * zz + cos_c[5]
        value = 1.0 - 0.5 * zz + zz * zz * p
    return -value if negative else value


@cache
def _dct_table(n: int) -> _FloatArray:
    """goimagehash's ``dct{n}`` table: ``math.Cos((float64(i)+0.5)*math.Pi/n) * 2``."""
    # The argument is a typed constant expression, which Go rounds to float64 after each
    # operation, exactly as this float arithmetic does; the cosine runs at start-up.
    return np.array([_go_cos((float(i) + 0.5) * math.pi / n) * 2 for i in range(n // 2)])


def _dct_axis0(x: _FloatArray) -> _FloatArray:
    """Unscaled DCT-II of each column of ``x`` (length a power of two), Lee's recursion.

    The recursion is unrolled level by level, every sub-transform of a level in one
    numpy operation (a Python call per sub-transform cost ~3 ms a hash); each value
    still goes through the same operations in the same order, so the result is the
    recursive algorithm's to the last bit.
    """
    n = x.shape[0]
    # Down: each (size x columns) block splits into its sums (the even outputs' input)
    # and its scaled differences (the odd outputs'); a level's blocks stack on axis 0 as
    # [every block's sums, every block's differences].
    blocks = x[None]
    sizes = []
    size = n
    while size > 1:
        half = size // 2
        front, back = blocks[:, :half], blocks[:, ::-1][:, :half]
        blocks = np.concatenate([front + back, (front - back) / _dct_table(size)[None, :, None]])
        sizes.append(size)
        size = half
    # Up: a length-1 transform is the value itself; each level interleaves its evens
    # with the sums of neighbouring odds.
    for size in reversed(sizes):
        count = blocks.shape[0] // 2
        evens, odds = blocks[:count], blocks[count:]
        out = np.empty((count, size, *blocks.shape[2:]))
        out[:, 0::2] = evens
        out[:, 1 : size - 1 : 2] = odds[:, :-1] + odds[:, 1:]
        out[:, size - 1] = odds[:, -1]
        blocks = out
    return blocks[0]


def _dct2d(grey: _FloatArray) -> _FloatArray:
    """goimagehash's DCT2DFast64: every row, then every column."""
    rows_done = _dct_axis0(grey.T).T
    return _dct_axis0(rows_done)


# --------------------------------------------------------------------------- median


def _quickselect_median(values: Sequence[float]) -> float:
    """goimagehash's ``quickSelectMedian`` for an even count, ported as written.

    The loop can only stop with low == hi == k, reached from a partition that put its
    pivot at k - 1, so the result is always ``s[k-1]/2 + s[k]/2`` of the sorted values.
    """
    seq = list(values)
    low, hi, k = 0, len(seq) - 1, len(seq) // 2
    while low < hi:
        pivot = low // 2 + hi // 2
        pivot_value = seq[pivot]
        store = low
        seq[pivot], seq[hi] = seq[hi], seq[pivot]
        for i in range(low, hi):
            if seq[i] < pivot_value:
                seq[store], seq[i] = seq[i], seq[store]
                store += 1
        seq[hi], seq[store] = seq[store], seq[hi]
        if k <= store:
            hi = store
        else:
            low = store + 1
    return seq[k - 1] / 2 + seq[k] / 2


# ------------------------------------------------------------------------ public API


# Every image is hashed about five times in a task (three nodes, the result node's check
# before its upload, the Relay's check of the upload), so recent hashes are remembered by
# the image's digest: a digest costs a few microseconds per kilobyte, a hash milliseconds.
_RECENT_LIMIT = 256
_recent: OrderedDict[bytes, bytes] = OrderedDict()
_recent_lock = threading.Lock()


def phash(png_bytes: bytes) -> bytes:
    """The 8-byte perceptual hash of a PNG image, as the network computes it.

    Raises ValueError when the bytes are not a decodable PNG image.
    """
    digest = hashlib.blake2b(png_bytes, digest_size=32).digest()
    with _recent_lock:
        known = _recent.get(digest)
        if known is not None:
            _recent.move_to_end(digest)
            return known
    computed = _compute(png_bytes)
    with _recent_lock:
        _recent[digest] = computed
        if len(_recent) > _RECENT_LIMIT:
            _recent.popitem(last=False)
    return computed


def _compute(png_bytes: bytes) -> bytes:
    decoded = _decode(png_bytes)
    coefficients = _dct2d(_grey(_resized_rgb16(decoded)))[:8, :8].ravel().tolist()
    median = _quickselect_median(coefficients)
    word = 0
    for index, value in enumerate(coefficients):
        if value > median:
            word |= 1 << (63 - index)
    return word.to_bytes(HASH_SIZE, "big")


def result_bytes(images: Sequence[bytes]) -> bytes:
    """A task result: the hashes of the images, concatenated in image order."""
    return b"".join(phash(image) for image in images)


def hamming(a: bytes, b: bytes) -> int:
    """Number of differing bits between two 8-byte hashes."""
    if len(a) != HASH_SIZE or len(b) != HASH_SIZE:
        raise ValueError(f"hamming needs two {HASH_SIZE}-byte hashes, got {len(a)} and {len(b)} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def similar(a: bytes, b: bytes, threshold: int) -> bool:
    """The Task contract's similarity rule for two results.

    Same length, a multiple of 8 bytes, and every 8-byte word (one image) within a
    Hamming distance strictly less than ``threshold``. Two empty results are similar.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 (a uint256 on chain), got {threshold}")
    if len(a) != len(b) or len(a) % HASH_SIZE != 0:
        return False
    return all(
        hamming(a[i : i + HASH_SIZE], b[i : i + HASH_SIZE]) < threshold
        for i in range(0, len(a), HASH_SIZE)
    )
