"""The checks on uploaded result images, and the limits the fake Relay states.

The real Relay checks only that the images' perceptual hashes, concatenated in
upload order, equal the on-chain `TaskSuccess.result` (and answers 500 for a file
it cannot decode). Here every failure is a 400 on field `images` with a message
naming the image at fault, and the limits below keep one request from exhausting
memory: a task has at most 10 images, and SD images are far below these sizes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from harness.phash import phash
from harness.relay_client import RelayField, RelayMessage

from fakes.relay.errors import RelayValidationError

__all__ = [
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_UPLOAD_BYTES",
    "check_result_images",
]

MAX_IMAGES = 10
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_UPLOAD_BYTES = 40 * 1024 * 1024  # the whole multipart request
MAX_IMAGE_PIXELS = 4096 * 4096  # a small PNG can inflate to gigabytes: refuse before decoding

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _refuse(message: str) -> RelayValidationError:
    return RelayValidationError(RelayField.IMAGES, message)


def _check_png_header(index: int, image: bytes) -> None:
    if not image.startswith(_PNG_SIGNATURE):
        raise _refuse(f"Image {index} is not a PNG image (it does not start with the PNG signature)")
    if len(image) < 24 or image[12:16] != b"IHDR":
        raise _refuse(f"Image {index} is not a valid PNG image (its IHDR header is missing)")
    width, height = struct.unpack(">II", image[16:24])
    if width * height > MAX_IMAGE_PIXELS:
        raise _refuse(f"Image {index} is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS} pixels allowed")


def check_result_images(
    images: Sequence[bytes],
    expected_result: bytes,
    image_hash: Callable[[bytes], bytes] = phash,
) -> None:
    """Refuse `images` unless they are 1-10 PNGs within the limits whose hashes,
    concatenated in order, are exactly `expected_result`."""
    if not images:
        raise _refuse("No images uploaded: send the result images as repeated 'images' files")
    if len(images) > MAX_IMAGES:
        raise _refuse(f"Too many images: {len(images)} uploaded, at most {MAX_IMAGES}")
    for index, image in enumerate(images):
        if len(image) > MAX_IMAGE_BYTES:
            raise _refuse(f"Image {index} is {len(image)} bytes, more than the {MAX_IMAGE_BYTES} allowed")
    total = sum(len(image) for image in images)
    if total > MAX_UPLOAD_BYTES:
        raise _refuse(f"Images are {total} bytes in all, more than the {MAX_UPLOAD_BYTES} allowed per upload")
    hashes = []
    for index, image in enumerate(images):
        _check_png_header(index, image)
        try:
            hashes.append(image_hash(image))
        except ValueError as exc:
            raise _refuse(f"Image {index} cannot be decoded: {exc}") from None
    if b"".join(hashes) != expected_result:
        raise _refuse(RelayMessage.WRONG_IMAGES)
