"""Stable Diffusion task arguments: defaults, ranges, strict types, hashing."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from eth_utils import keccak

from hydrogen_harness.protocol.task_args import (
    PreprocessMethod,
    TaskArgs,
    TaskArgsError,
    parse_task_args,
    task_hash,
    validate_task_args,
)


def _args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a cat"}
    args["task_config"] = {}
    args.update(overrides)
    return args


def _config(**config: Any) -> dict[str, Any]:
    return _args(task_config=config)


def _error(obj: Any) -> TaskArgsError:
    with pytest.raises(TaskArgsError) as caught:
        validate_task_args(obj)
    assert isinstance(caught.value, ValueError)
    return caught.value


# --- defaults --------------------------------------------------------------------


def test_defaults_applied() -> None:
    args = validate_task_args(_args())
    assert (args.negative_prompt, args.vae, args.textual_inversion) == ("", "", "")
    assert (args.lora, args.controlnet, args.refiner) == (None, None, None)
    config = args.task_config
    assert (config.image_width, config.image_height) == (512, 512)
    assert (config.steps, config.seed, config.num_images, config.cfg) == (25, 0, 6, 5)
    assert config.safety_checker is True


def test_section_defaults_applied() -> None:
    args = validate_task_args(
        _args(
            lora={"model": "lora-a"},
            controlnet={"model": "cn", "image_dataurl": "data:image/png;base64,AA=="},
            refiner={"model": "refiner"},
        )
    )
    assert args.lora is not None and args.lora.weight == 100
    assert args.controlnet is not None and args.controlnet.weight == 70
    assert args.controlnet.preprocess is None
    assert args.refiner is not None
    assert (args.refiner.denoising_cutoff, args.refiner.steps) == (80, 20)


def test_preprocess_method_and_args() -> None:
    controlnet = {
        "model": "cn",
        "image_dataurl": "data:,x",
        "preprocess": {"method": "canny", "args": {"low_threshold": 50}},
    }
    args = validate_task_args(_args(controlnet=controlnet))
    assert args.controlnet is not None and args.controlnet.preprocess is not None
    assert args.controlnet.preprocess.method is PreprocessMethod.CANNY
    assert args.controlnet.preprocess.args == {"low_threshold": 50}


# --- ranges ----------------------------------------------------------------------------

CONFIG_BOUNDS = [
    ("steps", 0, False),
    ("steps", 1, True),
    ("steps", 100, True),
    ("steps", 101, False),
    ("seed", -1, False),
    ("seed", 0, True),
    ("seed", 2**31 - 1, True),
    ("seed", 2**31, False),
    ("num_images", 0, False),
    ("num_images", 1, True),
    ("num_images", 10, True),
    ("num_images", 11, False),
    ("cfg", 0, False),
    ("cfg", 1, True),
    ("cfg", 20, True),
    ("cfg", 21, False),
    ("image_width", 0, False),
    ("image_width", 1, True),
    ("image_width", 513, True),  # no multiple-of-8 rule, as in the real schema
    ("image_height", -8, False),
    ("image_height", 1024, True),
]


@pytest.mark.parametrize(("name", "value", "ok"), CONFIG_BOUNDS)
def test_task_config_bounds(name: str, value: int, ok: bool) -> None:
    if ok:
        assert getattr(validate_task_args(_config(**{name: value})).task_config, name) == value
    else:
        assert _error(_config(**{name: value})).field == f"task_config.{name}"


SECTIONS = {
    "lora": {"model": "l"},
    "controlnet": {"model": "c", "image_dataurl": "data:,x"},
    "refiner": {"model": "r"},
}
SECTION_BOUNDS = [
    (section, name, value, ok)
    for section, name in [
        ("lora", "weight"),
        ("controlnet", "weight"),
        ("refiner", "denoising_cutoff"),
        ("refiner", "steps"),
    ]
    for value, ok in [(0, False), (1, True), (100, True), (101, False)]
]


@pytest.mark.parametrize(("section", "name", "value", "ok"), SECTION_BOUNDS)
def test_section_bounds(section: str, name: str, value: int, ok: bool) -> None:
    obj = _args(**{section: {**SECTIONS[section], name: value}})
    if ok:
        assert getattr(getattr(validate_task_args(obj), section), name) == value
    else:
        assert _error(obj).field == f"{section}.{name}"


# --- required fields, empty strings, nulls ----------------------------------------------


@pytest.mark.parametrize("name", ["base_model", "prompt", "task_config"])
def test_missing_required_top_level_field(name: str) -> None:
    obj = _args()
    del obj[name]
    error = _error(obj)
    assert (error.field, error.message) == (name, "field required")


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("lora", {"weight": 50}, "lora.model"),
        ("controlnet", {"image_dataurl": "data:,x"}, "controlnet.model"),
        ("controlnet", {"model": "c"}, "controlnet.image_dataurl"),
        ("refiner", {"steps": 5}, "refiner.model"),
        (
            "controlnet",
            {**SECTIONS["controlnet"], "preprocess": {}},
            "controlnet.preprocess.method",
        ),
    ],
)
def test_missing_required_section_field(section: str, value: dict[str, Any], field: str) -> None:
    error = _error(_args(**{section: value}))
    assert (error.field, error.message) == (field, "field required")


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (_args(base_model=""), "base_model"),
        (_args(prompt=""), "prompt"),
        (_args(lora={"model": ""}), "lora.model"),
        (_args(controlnet={"model": "c", "image_dataurl": ""}), "controlnet.image_dataurl"),
        (_args(refiner={"model": ""}), "refiner.model"),
    ],
)
def test_empty_required_strings_rejected(obj: dict[str, Any], field: str) -> None:
    assert _error(obj).field == field


def test_empty_optional_strings_accepted() -> None:
    args = validate_task_args(_args(negative_prompt="", vae="", textual_inversion=""))
    assert args.negative_prompt == ""


def test_null_optional_sections_accepted() -> None:
    controlnet = {**SECTIONS["controlnet"], "preprocess": None}
    args = validate_task_args(_args(lora=None, refiner=None, controlnet=controlnet))
    assert args.lora is None and args.refiner is None
    assert args.controlnet is not None and args.controlnet.preprocess is None
    assert validate_task_args(_args(controlnet=None)).controlnet is None


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (_args(task_config=None), "task_config"),
        (_args(prompt=None), "prompt"),
        (_args(vae=None), "vae"),
        (_args(negative_prompt=None), "negative_prompt"),
        (_config(seed=None), "task_config.seed"),
    ],
)
def test_null_not_accepted_for_non_nullable_fields(obj: dict[str, Any], field: str) -> None:
    assert _error(obj).field == field


def test_unknown_preprocess_method_rejected() -> None:
    obj = _args(controlnet={**SECTIONS["controlnet"], "preprocess": {"method": "sketchify"}})
    error = _error(obj)
    assert error.field == "controlnet.preprocess.method" and "sketchify" in error.message


# --- strict types ------------------------------------------------------------------------

BAD_PREPROCESS_ARGS = {"method": "mlsd", "args": [1]}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (_config(steps=True), "task_config.steps"),
        (_config(seed=False), "task_config.seed"),
        (_config(num_images="6"), "task_config.num_images"),
        (_config(cfg=5.0), "task_config.cfg"),
        (_config(image_width=512.5), "task_config.image_width"),
        (_config(safety_checker=1), "task_config.safety_checker"),
        (_config(safety_checker="true"), "task_config.safety_checker"),
        (_args(lora={"model": "l", "weight": True}), "lora.weight"),
        (_args(prompt=5), "prompt"),
        (_args(lora="l"), "lora"),
        (
            _args(controlnet={**SECTIONS["controlnet"], "preprocess": BAD_PREPROCESS_ARGS}),
            "controlnet.preprocess.args",
        ),
    ],
)
def test_wrong_types_rejected(obj: dict[str, Any], field: str) -> None:
    assert _error(obj).field == field


def test_error_message_names_the_value() -> None:
    error = _error(_config(num_images=11))
    assert "11" in error.message and str(error).startswith("task_config.num_images: ")


def test_long_values_are_shortened_in_messages() -> None:
    error = _error(_args(controlnet={"model": "c", "image_dataurl": 7 * 10**200}))
    assert error.field == "controlnet.image_dataurl" and len(error.message) < 200


# --- extras, mappings, JSON ------------------------------------------------------------------


def test_extra_keys_kept_at_every_level() -> None:
    obj = _args(
        version="2.0.0",
        scheduler={"method": "LCMScheduler"},
        lora={"model": "l", "weight_file_name": "w.safetensors"},
        task_config={"clip_skip": 2},
    )
    out = json.loads(validate_task_args(obj).to_json())
    assert out["version"] == "2.0.0" and out["scheduler"] == {"method": "LCMScheduler"}
    assert out["lora"]["weight_file_name"] == "w.safetensors"
    assert out["task_config"]["clip_skip"] == 2


def test_any_mapping_accepted() -> None:
    obj = MappingProxyType({**_args(), "task_config": MappingProxyType({"steps": 9})})
    assert validate_task_args(obj).task_config.steps == 9


def test_non_mapping_object_rejected() -> None:
    assert _error([("prompt", "x")]).field == "task_args"


@pytest.mark.parametrize(
    "text", ["", "{", "not json", "{'prompt': 'x'}", '{"a": NaN}', '{"a": Infinity}']
)
def test_non_json_rejected(text: str) -> None:
    with pytest.raises(TaskArgsError) as caught:
        parse_task_args(text)
    assert caught.value.field == "task_args" and "JSON" in caught.value.message


@pytest.mark.parametrize("text", ["[]", '[{"prompt": "x"}]', '"string"', "42", "null"])
def test_json_that_is_not_an_object_rejected(text: str) -> None:
    with pytest.raises(TaskArgsError) as caught:
        parse_task_args(text)
    assert caught.value.field == "task_args" and "object" in caught.value.message


def test_parse_rejects_non_string() -> None:
    with pytest.raises(TaskArgsError) as caught:
        parse_task_args(b"{}")  # type: ignore[arg-type]
    assert caught.value.field == "task_args"


def test_parse_reports_field_paths() -> None:
    with pytest.raises(TaskArgsError) as caught:
        parse_task_args(json.dumps(_config(num_images=0)))
    assert caught.value.field == "task_config.num_images"


def test_parse_reports_json_float_for_integer_field() -> None:
    text = json.dumps(_args()).replace('"task_config": {}', '"task_config": {"steps": 25.0}')
    with pytest.raises(TaskArgsError) as caught:
        parse_task_args(text)
    assert caught.value.field == "task_config.steps"


# --- to_json and task_hash ---------------------------------------------------------------


def test_to_json_is_canonical_compact_and_complete() -> None:
    text = validate_task_args(_args(prompt="un chat é", zebra=1, alpha=None)).to_json()
    assert " " not in text.replace("un chat \\u00e9", "")
    assert text.isascii() and "\\u00e9" in text
    decoded = json.loads(text)
    assert list(decoded) == sorted(decoded)
    assert list(decoded["task_config"]) == sorted(decoded["task_config"])
    assert decoded["task_config"]["num_images"] == 6 and decoded["lora"] is None
    assert decoded["zebra"] == 1 and "alpha" in decoded


def test_to_json_round_trips_and_is_stable() -> None:
    original = validate_task_args(
        _args(lora={"model": "l", "weight": 40}, task_config={"seed": 99, "steps": 30})
    )
    text = original.to_json()
    again = parse_task_args(text)
    assert again == original and again.to_json() == text
    # Key order of the input does not change the canonical form.
    shuffled = dict(reversed(list(json.loads(text).items())))
    assert parse_task_args(json.dumps(shuffled)).to_json() == text


def test_task_args_are_immutable() -> None:
    args = validate_task_args(_args())
    with pytest.raises(ValueError):
        args.prompt = "other"  # type: ignore[misc]
    assert isinstance(args, TaskArgs)


def test_task_hash_is_keccak_of_the_exact_utf8_string() -> None:
    text = '{"prompt":"é"}'
    assert task_hash(text) == keccak(text.encode("utf-8"))
    assert len(task_hash(text)) == 32
    assert task_hash(text) != keccak(text.encode("latin-1"))


def test_task_hash_changes_with_whitespace() -> None:
    compact = json.dumps(_args(), separators=(",", ":"))
    spaced = json.dumps(_args())
    assert json.loads(compact) == json.loads(spaced)
    assert task_hash(compact) != task_hash(spaced)
    assert task_hash(compact) != task_hash(compact + "\n")


def test_task_hash_known_value() -> None:
    # keccak256("") is the well-known c5d2460186f7...a470.
    expected = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert task_hash("").hex() == expected


def test_task_hash_rejects_lone_surrogates_and_non_strings() -> None:
    with pytest.raises(TaskArgsError):
        task_hash("\ud800")
    with pytest.raises(TypeError):
        task_hash(b"{}")  # type: ignore[arg-type]
