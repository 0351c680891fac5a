"""The perceptual hash against golden vectors from the Go library, and the similarity rule.

The golden hashes in ``data/phash_golden.json`` were computed by goimagehash v1.1.0's
``PerceptionHash`` (with nfnt/resize) on PNGs made by the recipes below. The recipes use
integer arithmetic and SHAKE-256 only, so they give the same pixels on every platform
and numpy version; the PNG encoder's choices do not matter, only the decoded pixels do.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hydrogen_harness.protocol import phash as phash_module
from hydrogen_harness.protocol.phash import HASH_SIZE, hamming, phash, result_bytes, similar
from hydrogen_harness.protocol.phash import _decode, _dct_table, _quickselect_median

GOLDEN = Path(__file__).parent / "data" / "phash_golden.json"

U8 = np.uint8


# ------------------------------------------------------------------ image recipes


def stream(label: str, count: int) -> np.ndarray:
    """``count`` deterministic bytes (as int64) named by ``label``."""
    return np.frombuffer(hashlib.shake_256(label.encode()).digest(count), dtype=U8).astype(np.int64)


def upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Integer bilinear enlargement of a (gh, gw) grid to (height, width)."""
    gh, gw = grid.shape

    def axis(n: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        if n == 1 or g == 1:
            zeros = np.zeros(n, dtype=np.int64)
            return zeros, zeros, zeros, 1
        pos = np.arange(n, dtype=np.int64) * (g - 1)
        lo = pos // (n - 1)
        frac = pos % (n - 1)
        return lo, np.minimum(lo + 1, g - 1), frac, n - 1

    y0, y1, fy, dy = axis(height, gh)
    x0, x1, fx, dx = axis(width, gw)
    fy, fx = fy[:, None], fx[None, :]
    total = (
        grid[y0][:, x0] * (dy - fy) * (dx - fx)
        + grid[y1][:, x0] * fy * (dx - fx)
        + grid[y0][:, x1] * (dy - fy) * fx
        + grid[y1][:, x1] * fy * fx
    )
    return total // (dy * dx)


def smooth(label: str, height: int, width: int, cells: int = 9) -> np.ndarray:
    """A photo-like smooth field in 0..255: a random coarse grid, enlarged."""
    grid = stream(label, cells * cells).reshape(cells, cells)
    return upsample(grid, height, width)


def noise(label: str, height: int, width: int) -> np.ndarray:
    return stream(label, height * width).reshape(height, width)


def png(array: np.ndarray, **save: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", **save)
    return out.getvalue()


def rgb(label: str, height: int, width: int, grain: int = 16) -> np.ndarray:
    """Smooth colour with a little fine noise on top."""
    planes = [
        smooth(f"{label}/{c}", height, width) * (256 - grain) // 256 + noise(f"{label}/n{c}", height, width) * grain // 256
        for c in "rgb"
    ]
    return np.stack(planes, axis=2).astype(U8)


def rgba(label: str, height: int, width: int) -> np.ndarray:
    alpha = smooth(f"{label}/a", height, width, cells=4)
    alpha = np.where(alpha < 40, 0, np.minimum(alpha + 60, 255))  # some fully clear, some opaque
    return np.concatenate([rgb(label, height, width), alpha[..., None].astype(U8)], axis=2)


def gradient(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) * 255 // max(width + height - 2, 1)], axis=2).astype(U8)


def paletted(label: str, height: int, width: int, transparent: bool) -> bytes:
    colours = 24
    index = (smooth(f"{label}/i", height, width) * colours // 256).astype(U8)
    image = Image.frombytes("P", (width, height), index.tobytes())
    image.putpalette(stream(f"{label}/pal", colours * 3).astype(U8).tobytes())
    out = io.BytesIO()
    extra: dict[str, object] = {}
    if transparent:
        extra["transparency"] = bytes(int(v) for v in stream(f"{label}/trns", colours))
    image.save(out, format="PNG", **extra)
    return out.getvalue()


def grey16(label: str, height: int, width: int) -> bytes:
    values = (smooth(f"{label}/hi", height, width) * 256 + noise(f"{label}/lo", height, width)).astype(np.uint16)
    image = Image.frombytes("I;16", (width, height), values.astype("<u2").tobytes())
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def solid(height: int, width: int, value: int) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=U8)


# Symmetric, noiseless images put DCT coefficients within a rounding error of the
# median, so they catch last-bit slips (cosine tables, operand order, b/256).


def diagonal(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((x + y) * 255 // (width + height - 2)).astype(U8)


def radial(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (((2 * x - width) ** 2 + (2 * y - height) ** 2) * 255 // (width * width + height * height)).astype(U8)


def checker(height: int, width: int, cell: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (((x // cell + y // cell) % 2) * 255).astype(U8)


def horizontal_ramp(height: int, width: int) -> np.ndarray:
    x = np.broadcast_to(np.arange(width) * 255 // (width - 1), (height, width))
    return np.stack([x, x, x], axis=2).astype(U8)


def paletted_ramp(height: int, width: int) -> bytes:
    """The diagonal ramp through a grey palette: Go's 16-bit generic resize path."""
    image = Image.frombytes("P", (width, height), diagonal(height, width).tobytes())
    image.putpalette(bytes(range(256)) * 3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def grey16_ramp(height: int, width: int) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    position = x * width + y
    values = (position * 65535 // position.max()).astype("<u2")
    out = io.BytesIO()
    Image.frombytes("I;16", (width, height), values.tobytes()).save(out, format="PNG")
    return out.getvalue()


RECIPES: dict[str, Callable[[], bytes]] = {
    # 8-bit RGB: Go decodes to *image.RGBA (8-bit resize path)
    "gradient_rgb_512": lambda: png(gradient(512, 512)),
    "noise_rgb_512": lambda: png(np.stack([noise(f"n512/{c}", 512, 512) for c in "rgb"], axis=2).astype(U8)),
    "smooth_rgb_512": lambda: png(rgb("s512", 512, 512)),
    "smooth_rgb_512_b": lambda: png(rgb("s512b", 512, 512, grain=64)),
    "smooth_rgb_640x480": lambda: png(rgb("s640", 480, 640)),
    "smooth_rgb_100x37": lambda: png(rgb("s100", 37, 100)),
    "smooth_rgb_37x100": lambda: png(rgb("s37", 100, 37)),
    "smooth_rgb_1000x777": lambda: png(rgb("s1000", 777, 1000)),
    "smooth_rgb_64": lambda: png(rgb("s64", 64, 64)),  # returned unresized by nfnt
    "smooth_rgb_64x200": lambda: png(rgb("s64x200", 200, 64)),
    "noise_rgb_7x5": lambda: png(np.stack([noise(f"n7/{c}", 5, 7) for c in "rgb"], axis=2).astype(U8)),
    "solid_rgb_512": lambda: png(solid(512, 512, 200)),  # all-equal AC terms: quickselect ties
    "solid_rgb_64": lambda: png(solid(64, 64, 17)),
    # 8-bit RGBA: *image.NRGBA, premultiplied while resizing (or by RGBA() at 64x64)
    "smooth_rgba_512": lambda: png(rgba("a512", 512, 512)),
    "smooth_rgba_640x480": lambda: png(rgba("a640", 480, 640)),
    "smooth_rgba_100x37": lambda: png(rgba("a100", 37, 100)),
    "smooth_rgba_64": lambda: png(rgba("a64", 64, 64)),
    # greyscale: *image.Gray, *image.Gray16; grey+alpha: *image.NRGBA
    "smooth_grey_512": lambda: png(smooth("g512", 512, 512).astype(U8)),
    "smooth_grey_100x37": lambda: png(smooth("g100", 37, 100).astype(U8)),
    "smooth_grey_64": lambda: png(smooth("g64", 64, 64).astype(U8)),
    "smooth_grey16_300x200": lambda: grey16("g16", 200, 300),
    "smooth_grey_alpha_128x96": lambda: png(np.stack([smooth("la", 96, 128), smooth("la/a", 96, 128, 3)], axis=2).astype(U8)),
    "bilevel_80x80": lambda: png(smooth("bw", 80, 80) > 127),
    # colour key and palettes
    "rgb_colour_key_96": lambda: png(rgb("key", 96, 96, grain=0) // 32 * 32, transparency=(64, 96, 128)),
    "paletted_200x150": lambda: paletted("p200", 150, 200, transparent=False),
    "paletted_trns_200x150": lambda: paletted("pt200", 150, 200, transparent=True),
    "paletted_64": lambda: paletted("p64", 64, 64, transparent=False),
    # near-ties
    "gradient_rgb_300": lambda: png(gradient(300, 300)),
    "horizontal_ramp_rgb_480x640": lambda: png(horizontal_ramp(640, 480)),
    "diagonal_grey_512": lambda: png(diagonal(512, 512)),
    "diagonal_grey_200": lambda: png(diagonal(200, 200)),
    "diagonal_grey_64": lambda: png(diagonal(64, 64)),
    "radial_grey_512": lambda: png(radial(512, 512)),
    "radial_grey_64": lambda: png(radial(64, 64)),
    "checker_grey_640x480": lambda: png(checker(480, 640, 16)),
    "paletted_ramp_512": lambda: paletted_ramp(512, 512),
    "paletted_ramp_256": lambda: paletted_ramp(256, 256),
    "paletted_ramp_64": lambda: paletted_ramp(64, 64),
    "grey16_ramp_256": lambda: grey16_ramp(256, 256),
    "grey16_ramp_640x480": lambda: grey16_ramp(480, 640),
}


def golden_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text())
    return data


def golden() -> dict[str, str]:
    return {name: entry["phash"] for name, entry in golden_file()["images"].items()}


# ------------------------------------------------------------------------- tests


def test_golden_file_covers_every_recipe() -> None:
    assert set(golden()) == set(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_phash_matches_goimagehash(name: str) -> None:
    assert phash(RECIPES[name]()).hex() == golden()[name]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_decoded_as_the_go_image_type(name: str) -> None:
    # Each Go type takes its own rounding path through nfnt and RGBA().
    expected = golden_file()["images"][name]["go_type"]
    assert f"image.{_decode(RECIPES[name]()).kind.value}" == expected


@pytest.mark.parametrize("n", [64, 32, 16, 8, 4, 2])
def test_dct_tables_are_gos_math_cos(n: int) -> None:
    # Go's math.Cos differs from the correctly rounded cosine in the last bit here.
    expected = golden_file()["dct_tables"]["bits"][str(n)]
    assert [f"{bits:016x}" for bits in _dct_table(n).view(np.uint64).tolist()] == expected


def test_quickselect_median_is_the_mean_of_the_middle_pair() -> None:
    rng = random.Random(7)
    for _ in range(500):
        values = [rng.choice([rng.random(), float(rng.randint(0, 5))]) for _ in range(64)]
        ordered = sorted(values)
        assert _quickselect_median(values) == ordered[31] / 2 + ordered[32] / 2


def test_phash_is_eight_bytes_and_deterministic() -> None:
    image = RECIPES["smooth_rgb_512"]()
    first = phash(image)
    assert len(first) == HASH_SIZE
    assert phash(image) == first


def test_a_hash_is_remembered_by_the_bytes_not_the_object(monkeypatch: pytest.MonkeyPatch) -> None:
    computed: list[int] = []
    compute = phash_module._compute

    def counting(png: bytes) -> bytes:
        computed.append(len(png))
        return compute(png)

    monkeypatch.setattr(phash_module, "_compute", counting)
    monkeypatch.setattr(phash_module, "_recent", OrderedDict())
    smooth, gradient_image = RECIPES["smooth_rgb_100x37"](), RECIPES["gradient_rgb_512"]()
    first = phash(smooth)
    assert phash(bytearray(smooth)) == first and phash(bytes(smooth)) == first  # equal bytes, other objects
    assert phash(gradient_image) == bytes.fromhex(golden()["gradient_rgb_512"])  # other bytes: computed
    assert computed == [len(smooth), len(gradient_image)]
    with pytest.raises(ValueError):  # failures are not remembered: each call raises
        phash(smooth[:40])
    with pytest.raises(ValueError):
        phash(smooth[:40])
    assert len(computed) == 4


def test_the_remembered_hashes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phash_module, "_recent", OrderedDict())
    monkeypatch.setattr(phash_module, "_RECENT_LIMIT", 2)
    images = [RECIPES["smooth_grey_64"](), RECIPES["smooth_rgb_100x37"](), RECIPES["gradient_rgb_512"]()]
    hashes = [phash(image) for image in images]
    assert list(phash_module._recent.values()) == hashes[1:]  # the oldest went first
    assert phash(images[0]) == hashes[0]


def test_result_bytes_concatenates_in_order() -> None:
    images = [RECIPES["smooth_rgb_512"](), RECIPES["gradient_rgb_512"](), RECIPES["smooth_grey_64"]()]
    expected = bytes.fromhex(golden()["smooth_rgb_512"] + golden()["gradient_rgb_512"] + golden()["smooth_grey_64"])
    assert result_bytes(images) == expected
    assert result_bytes([]) == b""


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "PNG signature"),
        (b"GIF89a not a png at all", "PNG signature"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "IHDR"),
    ],
)
def test_non_png_raises_value_error(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        phash(data)


def test_truncated_png_raises_value_error() -> None:
    image = RECIPES["smooth_rgb_100x37"]()
    with pytest.raises(ValueError, match="not a decodable PNG"):
        phash(image[: len(image) // 2])


def test_jpeg_is_rejected() -> None:
    out = io.BytesIO()
    Image.fromarray(gradient(32, 32)).save(out, format="JPEG")
    with pytest.raises(ValueError, match="not a PNG"):
        phash(out.getvalue())


def word(value: int) -> bytes:
    return value.to_bytes(HASH_SIZE, "big")


def test_hamming_counts_differing_bits() -> None:
    assert hamming(word(0), word(0)) == 0
    assert hamming(word(0), word(2**64 - 1)) == 64
    assert hamming(word(0b1011), word(0b0110)) == 3
    assert hamming(word(1 << 63), word(1)) == 2


def test_hamming_rejects_wrong_lengths() -> None:
    with pytest.raises(ValueError, match="8-byte"):
        hamming(b"\x00" * 7, word(0))
    with pytest.raises(ValueError, match="8-byte"):
        hamming(word(0), b"\x00" * 16)


def test_similar_threshold_is_strictly_less() -> None:
    a, b = word(0), word(0b11111)  # distance 5
    assert not similar(a, b, 5)
    assert similar(a, b, 6)
    assert not similar(a, a, 0)  # distance 0 is not < 0
    assert similar(a, a, 1)


def test_similar_checks_every_image() -> None:
    a = word(0) + word(0)
    close = word(0b1) + word(0b11)
    far_second = word(0b1) + word(0b1111111)
    assert similar(a, close, 5)
    assert not similar(a, far_second, 5)
    assert not similar(far_second, a, 5)


def test_similar_length_rules() -> None:
    one, two = word(0), word(0) * 2
    assert similar(b"", b"", 5)
    assert similar(b"", b"", 0)
    assert not similar(b"", one, 5)
    assert not similar(one, b"", 5)
    assert not similar(one, two, 64)
    assert not similar(b"\x00" * 7, b"\x00" * 7, 64)  # not a multiple of 8
    assert not similar(one + b"\x00", one + b"\x00", 64)


def test_similar_rejects_negative_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        similar(b"", b"", -1)
