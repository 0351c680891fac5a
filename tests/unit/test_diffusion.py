"""The Stable Diffusion stand-in: deterministic, sensitive to its inputs, robust to jitter."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hydrogen_harness.fakes.diffusion import MAX_PIXELS, DeterministicGenerator, ImageGenerator, generate_all, jitter
from hydrogen_harness.protocol.phash import hamming, phash, similar
from hydrogen_harness.protocol.task_args import TaskArgsError

FAR = 16  # bits between hashes of different inputs
DEFAULT_THRESHOLD = 5  # the Task contract's initial distanceThreshold

Args = dict[str, Any]


def base_args(**config: Any) -> Args:
    return {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in the snow", "task_config": config}


def random_args(rng: random.Random) -> Args:
    return {
        "base_model": rng.choice(["runwayml/stable-diffusion-v1-5", "stabilityai/stable-diffusion-xl-base-1.0"]),
        "prompt": f"prompt {rng.randrange(10**9)}",
        "negative_prompt": rng.choice(["", "blurry", f"ugly {rng.randrange(1000)}"]),
        "task_config": {
            # small sizes keep the test quick; the hash does not depend on the size
            "image_width": rng.choice([64, 96, 128, 160]),
            "image_height": rng.choice([64, 80, 120]),
            "steps": rng.randint(1, 100),
            "seed": rng.randrange(2**31),
            "cfg": rng.randint(1, 20),
            "num_images": 1,
        },
    }


def with_config(args: Args, key: str, value: Any) -> Args:
    return {**args, "task_config": {**args["task_config"], key: value}}


CHANGES: dict[str, Callable[[Args, int], tuple[Args, int]]] = {
    "base_model": lambda a, i: ({**a, "base_model": a["base_model"] + "-v2"}, i),
    "prompt": lambda a, i: ({**a, "prompt": a["prompt"] + "!"}, i),
    "negative_prompt": lambda a, i: ({**a, "negative_prompt": a["negative_prompt"] + " dark"}, i),
    "seed": lambda a, i: (with_config(a, "seed", (a["task_config"]["seed"] + 1) % 2**31), i),
    "steps": lambda a, i: (with_config(a, "steps", a["task_config"]["steps"] % 100 + 1), i),
    "cfg": lambda a, i: (with_config(a, "cfg", a["task_config"]["cfg"] % 20 + 1), i),
    "index": lambda a, i: (a, i + 1),
}


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


@pytest.fixture(scope="module")
def generator() -> DeterministicGenerator:
    return DeterministicGenerator()


def test_default_generator_satisfies_the_protocol() -> None:
    chosen: ImageGenerator = DeterministicGenerator()
    assert decode(chosen.generate(base_args(), 0)).format == "PNG"


def test_same_input_same_bytes(generator: DeterministicGenerator) -> None:
    args = base_args(seed=42, image_width=256, image_height=192)
    first = generator.generate(args, 3)
    assert generator.generate(args, 3) == first
    assert DeterministicGenerator().generate(args, 3) == first


def test_png_has_no_metadata_chunks(generator: DeterministicGenerator) -> None:
    png = generator.generate(base_args(image_width=64, image_height=64), 0)
    chunks, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        chunks.append(png[at + 4 : at + 8])
        at += 12 + length
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}


def test_defaults_are_applied(generator: DeterministicGenerator) -> None:
    explicit = base_args(image_width=512, image_height=512, steps=25, seed=0, num_images=6, safety_checker=True, cfg=5)
    explicit["negative_prompt"] = ""
    assert generator.generate(base_args(), 1) == generator.generate(explicit, 1)


def test_batch_size_and_unknown_keys_do_not_change_an_image(generator: DeterministicGenerator) -> None:
    args = base_args(image_width=96, image_height=96, seed=9)
    image = generator.generate(args, 2)
    assert generator.generate(with_config(args, "num_images", 10), 2) == image
    assert generator.generate(with_config(args, "safety_checker", False), 2) == image
    assert generator.generate({**args, "future_option": {"x": 1}}, 2) == image


def test_optional_sections_change_the_image(generator: DeterministicGenerator) -> None:
    args = base_args(image_width=96, image_height=96)
    plain = phash(generator.generate(args, 0))
    for extra in ({"lora": {"model": "some/lora"}}, {"vae": "some/vae"}, {"refiner": {"model": "some/refiner"}}):
        assert hamming(plain, phash(generator.generate({**args, **extra}, 0))) >= FAR


@pytest.mark.parametrize("width, height", [(512, 512), (768, 512), (512, 768), (64, 64), (100, 37), (1, 1)])
def test_output_size_matches_request(generator: DeterministicGenerator, width: int, height: int) -> None:
    image = decode(generator.generate(base_args(image_width=width, image_height=height), 0))
    assert image.size == (width, height)
    assert image.mode == "RGB"


def test_images_are_colourful(generator: DeterministicGenerator) -> None:
    pixels = np.asarray(decode(generator.generate(base_args(), 0))).astype(int)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).mean() > 10
    assert pixels.std() > 10


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_each_input_moves_the_hash_far(generator: DeterministicGenerator, name: str) -> None:
    rng = random.Random(f"diffusion/{name}")
    distances = []
    for _ in range(200):
        args, index = random_args(rng), rng.randrange(6)
        changed, changed_index = CHANGES[name](args, index)
        distances.append(hamming(phash(generator.generate(args, index)), phash(generator.generate(changed, changed_index))))
    assert min(distances) >= FAR, sorted(distances)[:5]


def test_generate_all_returns_num_images_in_order(generator: DeterministicGenerator) -> None:
    args = base_args(image_width=64, image_height=64, num_images=3)
    assert generate_all(args) == [generator.generate(args, i) for i in range(3)]
    assert len(generate_all(base_args(image_width=64, image_height=64))) == 6  # the default


def test_generate_all_uses_the_given_generator() -> None:
    class Fixed:
        def generate(self, args: Any, index: int) -> bytes:
            return bytes([index])

    assert generate_all(base_args(num_images=2), Fixed()) == [b"\x00", b"\x01"]


def test_bad_requests_raise(generator: DeterministicGenerator) -> None:
    with pytest.raises(TaskArgsError, match="prompt"):
        generator.generate({"base_model": "m", "task_config": {}}, 0)
    with pytest.raises(ValueError, match="index"):
        generator.generate(base_args(), -1)
    with pytest.raises(ValueError, match="limit"):
        generator.generate(base_args(image_width=MAX_PIXELS, image_height=2), 0)


def test_jitter_keeps_hash_within_threshold(generator: DeterministicGenerator) -> None:
    rng = random.Random("jitter")
    worst = 0
    for seed in range(200):
        args = random_args(rng)
        png = generator.generate(args, 0)
        clean, noisy = phash(png), phash(jitter(png, seed))
        worst = max(worst, hamming(clean, noisy))
        assert similar(clean, noisy, DEFAULT_THRESHOLD)
    assert worst < DEFAULT_THRESHOLD


def test_jitter_changes_pixels_by_at_most_the_amplitude(generator: DeterministicGenerator) -> None:
    png = generator.generate(base_args(image_width=128, image_height=96), 0)
    noisy = jitter(png, seed=5)
    before = np.asarray(decode(png)).astype(int)
    after = np.asarray(decode(noisy)).astype(int)
    assert after.shape == before.shape
    assert 0 < np.abs(after - before).max() <= 2
    assert jitter(png, seed=5) == noisy
    assert jitter(png, seed=6) != noisy
    assert np.abs(np.asarray(decode(jitter(png, 5, amplitude=0))).astype(int) - before).max() == 0


def test_jitter_leaves_alpha_alone() -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 3] = np.arange(16, dtype=np.uint8)[None, :] * 16
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="PNG")
    noisy = np.asarray(decode(jitter(out.getvalue(), seed=1)))
    assert np.array_equal(noisy[..., 3], rgba[..., 3])


def test_jitter_rejects_bad_amplitude(generator: DeterministicGenerator) -> None:
    png = generator.generate(base_args(image_width=8, image_height=8), 0)
    with pytest.raises(ValueError, match="amplitude"):
        jitter(png, seed=1, amplitude=-1)
    with pytest.raises(ValueError, match="amplitude"):
        jitter(png, seed=1, amplitude=256)


def test_jitter_rejects_non_png() -> None:
    with pytest.raises(ValueError, match="PNG"):
        jitter(b"not an image", seed=1)
