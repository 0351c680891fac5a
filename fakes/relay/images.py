"""The checks on uploaded result images, and the limits the fake Relay states.

The real Relay checks only that the images' perceptual hashes, concatenated in
upload order, equal the on-chain `TaskSuccess.result` (and answers 500 for a file
it cannot decode). Here every failure is a 400 on field `images` with a message
naming the image at fault, and the limits below bound the work of one upload
before any image is decoded, from the bytes and the PNG headers alone:

- at most `MAX_IMAGES` (10) images, as a task has at most 10;
- `MAX_IMAGE_BYTES` per file and `MAX_UPLOAD_BYTES` per request (a 1024x1024 SD
  image is 1-3 MB);
- `MAX_IMAGE_PIXELS` per image (4096x4096, the largest the simulated nodes paint);
- a PNG's bit depth must be one its colour type allows (Go's decoder refuses the
  others too);
- `MAX_UPLOAD_DECODED_BYTES` for all the images of one upload together, counted as
  the memory Go's decoder gives each (`PngHeader.decoded_bytes`). A small PNG of
  zeros can decode to a huge image: ten 4096x4096 16-bit ones are 1.3 MB of files
  but 1.3 GB decoded, and took 46 s to hash. The budget is what the largest real
  upload needs, ten images at the network's largest size (1024x1024), even at 16
  bits per channel: 10 x 1024 x 1024 x 8 bytes = 80 MiB, about a second of hashing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hydrogen_harness.fakes.diffusion import MAX_PIXELS
from hydrogen_harness.protocol.phash import PNG_SIGNATURE, phash
from hydrogen_harness.client.relay import RelayField, RelayMessage

from hydrogen_harness.fakes.relay.errors import RelayValidationError

__all__ = [
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_DECODED_BYTES",
    "PngHeader",
    "check_result_images",
    "check_upload_limits",
]

MAX_IMAGES = 10
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_UPLOAD_BYTES = 40 * 1024 * 1024  # the whole multipart request
MAX_IMAGE_PIXELS = MAX_PIXELS  # what the nodes paint; a small PNG can inflate to gigabytes: refuse before decoding
MAX_UPLOAD_DECODED_BYTES = MAX_IMAGES * 1024 * 1024 * 8

# PNG colour type -> (its name, the bit depths it allows, bytes per pixel Go's decoder
# allocates at 8 bits or less, and at 16 bits).
_COLOUR_TYPES: dict[int, tuple[str, tuple[int, ...], int, int]] = {
    0: ("greyscale", (1, 2, 4, 8, 16), 1, 2),  # image.Gray, image.Gray16
    2: ("RGB", (8, 16), 4, 8),  # image.RGBA, image.RGBA64
    3: ("palette", (1, 2, 4, 8), 1, 1),  # image.Paletted
    4: ("greyscale with alpha", (8, 16), 4, 8),  # image.NRGBA, image.NRGBA64
    6: ("RGBA", (8, 16), 4, 8),  # image.NRGBA, image.NRGBA64
}


@dataclass(frozen=True)
class PngHeader:
    """What a PNG's IHDR chunk says about the image it decodes to."""

    width: int
    height: int
    bit_depth: int
    colour_type: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """The size of the image Go's PNG decoder would allocate for it."""
        _, _, narrow, wide = _COLOUR_TYPES[self.colour_type]
        return self.pixels * (wide if self.bit_depth == 16 else narrow)

    def describe(self) -> str:
        return f"{self.width}x{self.height} {self.bit_depth}-bit {_COLOUR_TYPES[self.colour_type][0]}"


def _refuse(message: str) -> RelayValidationError:
    return RelayValidationError(RelayField.IMAGES, message)


def _png_header(index: int, image: bytes) -> PngHeader:
    if not image.startswith(PNG_SIGNATURE):
        raise _refuse(f"Image {index} is not a PNG image (it does not start with the PNG signature)")
    if len(image) < 29 or image[12:16] != b"IHDR":
        raise _refuse(f"Image {index} is not a valid PNG image (its IHDR header is missing)")
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", image[16:26])
    if width * height > MAX_IMAGE_PIXELS:
        raise _refuse(f"Image {index} is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS} pixels allowed")
    if width == 0 or height == 0:
        raise _refuse(f"Image {index} is not a valid PNG image (it is {width}x{height} pixels)")
    kind = _COLOUR_TYPES.get(colour_type)
    if kind is None:
        raise _refuse(f"Image {index} is not a valid PNG image (colour type {colour_type} does not exist)")
    if bit_depth not in kind[1]:
        raise _refuse(
            f"Image {index} is not a valid PNG image ({bit_depth} bits per sample; a {kind[0]} PNG has "
            f"{', '.join(map(str, kind[1]))})"
        )
    return PngHeader(width, height, bit_depth, colour_type)


def check_upload_limits(images: Sequence[bytes]) -> list[PngHeader]:
    """Refuse `images` past any limit of the module docstring, reading only their
    sizes and headers; returns the headers."""
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
    headers = [_png_header(index, image) for index, image in enumerate(images)]
    decoded = sum(header.decoded_bytes for header in headers)
    if decoded > MAX_UPLOAD_DECODED_BYTES:
        largest = max(headers, key=lambda header: header.decoded_bytes)
        raise _refuse(
            f"Images would decode to {decoded} bytes in all (the largest is {largest.describe()}), more than the "
            f"{MAX_UPLOAD_DECODED_BYTES} allowed per upload (10 images of 1024x1024 at 16 bits per channel)"
        )
    return headers


def check_result_images(
    images: Sequence[bytes],
    expected_result: bytes,
    image_hash: Callable[[bytes], bytes] = phash,
) -> None:
    """Refuse `images` unless they are 1-10 PNGs within the limits whose hashes,
    concatenated in order, are exactly `expected_result`."""
    check_upload_limits(images)
    hashes = []
    for index, image in enumerate(images):
        try:
            hashes.append(image_hash(image))
        except ValueError as exc:
            raise _refuse(f"Image {index} cannot be decoded: {exc}") from None
    if b"".join(hashes) != expected_result:
        raise _refuse(RelayMessage.WRONG_IMAGES)
