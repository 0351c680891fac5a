"""A deterministic stand-in for Stable Diffusion.

Real nodes run a diffusion model; simulated ones need images that behave the same way
where the protocol can see them: equal arguments give equal images (honest nodes
agree), different arguments give perceptual hashes far apart (a cheater is caught),
and a little pixel noise leaves the hash almost unchanged (a "jitter" node still
passes).

The default generator gets that by construction rather than by luck. The perceptual
hash keeps the signs, relative to their median, of the 8x8 lowest DCT frequencies of
the image shrunk to 64x64. So each image is painted from exactly those frequencies: a
SHA-256 of the arguments picks which 31 of the 63 non-constant ones are positive and
how strong each is (never weaker than a couple of grey levels). The hash then reads
back that sign pattern, a random balanced 64-bit word per set of arguments, with a wide
margin against noise. Colour is added along directions that leave the luminance, and
so the hash, untouched.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydantic import BaseModel

from hydrogen_harness.protocol.task_args import TaskArgs, validate_task_args

__all__ = [
    "MAX_PIXELS",
    "DeterministicGenerator",
    "ImageGenerator",
    "generate_all",
    "jitter",
]

MAX_PIXELS = 4096 * 4096
"""Largest image the stand-in paints; bigger requests fail as a GPU would."""

_GRID = 64  # the perceptual hash's working size
_BLOCK = 8  # the hashed block of DCT frequencies
_POSITIVE = 31  # with the always-positive DC term, half of the 64 hashed values
_DOMAIN = b"hydrogen-harness/diffusion/v1"

# Unit colour directions with zero luminance (0.299 R + 0.587 G + 0.114 B = 0).
_CHROMA = np.array([[0.587, -0.299, 0.0], [0.0, 0.114, -0.587]])
_CHROMA /= np.linalg.norm(_CHROMA, axis=1, keepdims=True)

_Floats = NDArray[np.float64]


class ImageGenerator(Protocol):
    """Anything that turns task arguments into PNG images."""

    def generate(self, args: Mapping[str, Any], index: int) -> bytes:
        """PNG bytes of image ``index`` (0-based) for the parsed task arguments."""
        ...


@dataclass(frozen=True)
class DeterministicGenerator:
    """Smooth, colourful images whose perceptual hash is fixed by the arguments.

    Every argument a real model would react to counts (model, prompts, LoRA,
    ControlNet, VAE, refiner, textual inversion, size, steps, seed, cfg) plus the image
    index; ``num_images`` and ``safety_checker`` do not, so image i is the same whatever
    the batch size. Raises ``TaskArgsError`` for invalid arguments and ``ValueError``
    for a negative index or an image over :data:`MAX_PIXELS`.
    """

    compress_level: int = 1  # fast; the bytes are the same on every run

    def generate(self, args: Mapping[str, Any], index: int) -> bytes:
        task = validate_task_args(args)
        if index < 0:
            raise ValueError(f"image index must be >= 0, got {index}")
        width, height = task.task_config.image_width, task.task_config.image_height
        if width * height > MAX_PIXELS:
            raise ValueError(f"image of {width}x{height} pixels exceeds the {MAX_PIXELS}-pixel limit")
        return _render(_seed(task, index), width, height, self.compress_level)


def generate_all(args: Mapping[str, Any], generator: ImageGenerator | None = None) -> list[bytes]:
    """All ``num_images`` images of a task, in order."""
    count = validate_task_args(args).task_config.num_images
    chosen = generator if generator is not None else DeterministicGenerator()
    return [chosen.generate(args, index) for index in range(count)]


def jitter(png: bytes, seed: int, amplitude: int = 2) -> bytes:
    """The same image with every colour value nudged by at most ``amplitude``.

    Every hashed coefficient of a generated image sits far from the median, so noise
    this small leaves its hash unchanged in practice and a node that adds it still
    agrees with honest ones. Alpha is left alone.
    """
    if not 0 <= amplitude <= 255:
        raise ValueError(f"amplitude must be within 0..255, got {amplitude}")
    try:
        image: Image.Image = Image.open(io.BytesIO(png), formats=["PNG"])
        image.load()
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise ValueError(f"jitter needs a PNG image: {exc}") from exc
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    pixels = np.asarray(image).astype(np.int16)
    colour = pixels if pixels.ndim == 2 else pixels[..., : 3 if image.mode.startswith("RGB") else 1]
    rng = np.random.default_rng(seed % 2**128)  # any int, negative included
    colour += rng.integers(-amplitude, amplitude + 1, size=colour.shape, dtype=np.int16)
    np.clip(pixels, 0, 255, out=pixels)
    return _png(pixels.astype(np.uint8), compress_level=1)


# ------------------------------------------------------------------------ internals


def _known_fields(model: BaseModel) -> dict[str, Any]:
    """Declared fields only: unknown keys are kept by TaskArgs but ignored by nodes."""
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        out[name] = _known_fields(value) if isinstance(value, BaseModel) else value
    return out


def _seed(task: TaskArgs, index: int) -> bytes:
    """SHA-256 of the arguments that shape image `index`."""
    fields = _known_fields(task)
    for batch_only in ("num_images", "safety_checker"):
        del fields["task_config"][batch_only]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(_DOMAIN + b"\0" + canonical.encode() + b"\0" + str(index).encode()).digest()


# The three nodes of a task paint the same images one after the other: the last few are
# remembered (a small bound, since a large image's PNG runs to megabytes).
@lru_cache(maxsize=8)
def _render(seed: bytes, width: int, height: int, compress_level: int) -> bytes:
    # SHAKE rather than numpy's generators: the same bytes on every numpy version.
    draws = np.frombuffer(hashlib.shake_256(seed).digest(4 * 512), dtype="<u4")
    return _png(_paint(draws, width, height), compress_level)


def _basis(size: int) -> _Floats:
    """cos(pi (2u+1) k / 128) for k < 8, u being each pixel's place on the 64 grid."""
    u = (np.arange(size) + 0.5) * (_GRID / size) - 0.5
    k = np.arange(_BLOCK)
    return np.cos(np.pi * np.outer(2 * u + 1, k) / (2 * _GRID))


def _paint(draws: NDArray[np.uint32], width: int, height: int) -> NDArray[np.uint8]:
    uniform = draws / 2.0**32
    terms = _BLOCK * _BLOCK - 1  # the hashed frequencies except the constant one
    # Which frequencies end up above the median: a random half, ties broken by position.
    order = np.lexsort((np.arange(terms), draws[:terms]))
    signs = np.full(terms, -1.0)
    signs[order[:_POSITIVE]] = 1.0
    # Amplitudes in grey levels; 2.5 keeps every coefficient about 2500 (in the hash's
    # unnormalised DCT) clear of the median, against roughly 20 for +-2 pixel noise.
    amplitudes = 2.5 + 3.5 * uniform[terms : 2 * terms]
    luma = np.zeros(_BLOCK * _BLOCK)
    luma[1:] = signs * amplitudes

    # Colour: two smooth chroma fields over the 4x4 lowest frequencies, plus a tint.
    chroma = np.zeros((2, _BLOCK, _BLOCK))
    chroma[:, :4, :4] = (uniform[2 * terms : 2 * terms + 32].reshape(2, 4, 4) - 0.5) * 60.0

    # Each channel is separable, so mix the coefficient blocks first and paint once.
    per_channel = luma.reshape(1, _BLOCK, _BLOCK) + np.tensordot(_CHROMA.T, chroma, axes=(1, 0))
    per_channel[:, 0, 0] += 128.0  # mid grey
    rows, cols = _basis(height), _basis(width)
    # (height, 3, 8) @ (8, width) -> (height, 3, width), then pixels in (h, w, rgb) order
    rgb = (rows @ per_channel).transpose(1, 0, 2) @ cols.T
    return np.clip(rgb.transpose(0, 2, 1) + 0.5, 0, 255).astype(np.uint8)


def _png(pixels: NDArray[np.uint8], compress_level: int) -> bytes:
    out = io.BytesIO()
    # No metadata chunks (Pillow writes no time stamp), fixed zlib settings.
    Image.fromarray(pixels).save(out, format="PNG", compress_level=compress_level, optimize=False)
    return out.getvalue()
