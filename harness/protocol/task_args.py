"""Stable Diffusion task arguments (PROTOCOL.md section 5).

The arguments travel as a JSON string: the app hashes it into ``createTask``, uploads
it to the Relay, and the selected nodes download and run it. Validation mirrors the
JSON schema the real Relay checks (crynux-ai/stable-diffusion-task,
``schema/stable-diffusion-inference-task.json``) where PROTOCOL.md is silent:

- ``lora.weight``, ``controlnet.weight`` and ``refiner.denoising_cutoff`` are integer
  percentages with ``exclusiveMinimum: 0, maximum: 100``, so 1-100;
  ``refiner.steps`` is 1-100 (``exclusiveMinimum: 0``).
- ``image_width`` and ``image_height`` are plain integers in that schema, with no
  range and no multiple-of-8 rule. We require them to be positive (a zero or negative
  size cannot mean anything) and nothing more: sizes a GPU cannot handle, or that the
  diffusion pipeline refuses (not a multiple of 8), are the node's to report with
  ``reportTaskError``, a failure path worth simulating rather than hiding.
- ``controlnet.preprocess.method`` must be one of the schema's preprocessors (it is a
  ``oneOf`` keyed by ``method``); ``preprocess.args`` must be an object or null and is
  kept as given, not checked per method.
- ``vae``, ``textual_inversion`` and ``negative_prompt`` are strings defaulting to ""
  (not nullable), as in the schema.

Types are strict: ``true`` is not a step count, ``"5"`` is not a number and ``5.0`` is
not an integer. Unknown keys are kept, at every level, so args written for newer node
versions round-trip unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, NoReturn

from eth_hash.auto import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ControlnetArgs",
    "LoraArgs",
    "PreprocessArgs",
    "PreprocessMethod",
    "RefinerArgs",
    "TaskArgs",
    "TaskArgsError",
    "TaskConfig",
    "parse_task_args",
    "task_hash",
    "validate_task_args",
]

MAX_SEED = 2**31 - 1

NonEmptyString = Annotated[str, Field(min_length=1)]
Percent = Annotated[int, Field(ge=1, le=100)]
Steps = Annotated[int, Field(ge=1, le=100)]


class TaskArgsError(ValueError):
    """Task arguments that fail validation; ``field`` is a dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PreprocessMethod(StrEnum):
    """ControlNet image preprocessors known to the Stable Diffusion task."""

    CANNY = "canny"
    SCRIBBLE_HED = "scribble_hed"
    SCRIBBLE_HEDSAFE = "scribble_hedsafe"
    SOFTEDGE_HEDSAFE = "softedge_hedsafe"
    DEPTH_MIDAS = "depth_midas"
    MLSD = "mlsd"
    OPENPOSE = "openpose"
    OPENPOSE_FACE = "openpose_face"
    OPENPOSE_FACEONLY = "openpose_faceonly"
    OPENPOSE_FULL = "openpose_full"
    OPENPOSE_HAND = "openpose_hand"
    SCRIBBLE_PIDINET = "scribble_pidinet"
    SOFTEDGE_PIDINET = "softedge_pidinet"
    SCRIBBLE_PIDISAFE = "scribble_pidisafe"
    SOFTEDGE_PIDISAFE = "softedge_pidisafe"
    NORMAL_BAE = "normal_bae"
    LINEART_COARSE = "lineart_coarse"
    LINEART_REALISTIC = "lineart_realistic"
    LINEART_ANIME = "lineart_anime"
    DEPTH_ZOE = "depth_zoe"
    DEPTH_LERES = "depth_leres"
    DEPTH_LERES_PP = "depth_leres++"
    SHUFFLE = "shuffle"
    MEDIAPIPE_FACE = "mediapipe_face"


class _Section(BaseModel):
    # strict: no bool->int, str->int or float->int coercion; extra="allow": unknown
    # keys are kept and written back by to_json.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class LoraArgs(_Section):
    model: NonEmptyString
    weight: Percent = 100


class PreprocessArgs(_Section):
    # Lax for this one field only: strict mode would demand an enum instance, and
    # JSON gives the method as a string.
    method: PreprocessMethod = Field(strict=False)
    args: dict[str, Any] | None = None


class ControlnetArgs(_Section):
    model: NonEmptyString
    image_dataurl: NonEmptyString
    weight: Percent = 70
    preprocess: PreprocessArgs | None = None


class RefinerArgs(_Section):
    model: NonEmptyString
    denoising_cutoff: Percent = 80
    steps: Steps = 20


class TaskConfig(_Section):
    image_width: Annotated[int, Field(ge=1)] = 512
    image_height: Annotated[int, Field(ge=1)] = 512
    steps: Steps = 25
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    num_images: Annotated[int, Field(ge=1, le=10)] = 6
    safety_checker: bool = True
    cfg: Annotated[int, Field(ge=1, le=20)] = 5


class TaskArgs(_Section):
    """A validated Stable Diffusion task; build with :func:`parse_task_args`."""

    base_model: NonEmptyString
    prompt: NonEmptyString
    negative_prompt: str = ""
    task_config: TaskConfig
    lora: LoraArgs | None = None
    controlnet: ControlnetArgs | None = None
    vae: str = ""
    refiner: RefinerArgs | None = None
    textual_inversion: str = ""

    def to_json(self) -> str:
        """Canonical compact JSON, defaults written out, keys sorted, ASCII only.

        ASCII (non-ASCII as \\uXXXX escapes) keeps the string safe to hash and to
        embed in a signed request whatever the prompt holds.
        """
        return json.dumps(
            self.model_dump(mode="json"),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )


def _describe(value: Any) -> str:
    text = repr(value)
    # Data URLs run to megabytes; an error message needs only the start.
    return text if len(text) <= 60 else text[:57] + "..."


def _raise_first(error: ValidationError) -> NoReturn:
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "task_args"
    if first["type"] == "missing":
        raise TaskArgsError(field, "field required") from None
    raise TaskArgsError(field, f"{first['msg']}, got {_describe(first['input'])}") from None


def _plain(value: Any) -> Any:
    # Strict pydantic wants dicts for nested sections; accept any Mapping at any level.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def validate_task_args(obj: Mapping[str, Any]) -> TaskArgs:
    """Validate decoded task arguments; raises :class:`TaskArgsError`."""
    if not isinstance(obj, Mapping):
        raise TaskArgsError("task_args", f"must be a JSON object, got {type(obj).__name__}")
    try:
        return TaskArgs.model_validate(_plain(obj))
    except ValidationError as error:
        _raise_first(error)


def _refuse_constant(name: str) -> NoReturn:
    # Python's json accepts NaN/Infinity; JSON (and the Go Relay) does not.
    raise ValueError(f"{name} is not valid JSON")


def parse_task_args(args_json: str) -> TaskArgs:
    """Parse and validate the task arguments string; raises :class:`TaskArgsError`."""
    if not isinstance(args_json, str):
        raise TaskArgsError("task_args", f"must be a string, got {type(args_json).__name__}")
    try:
        obj = json.loads(args_json, parse_constant=_refuse_constant)
    except ValueError as error:
        raise TaskArgsError("task_args", f"not valid JSON: {error}") from None
    if not isinstance(obj, dict):
        raise TaskArgsError("task_args", f"must be a JSON object, got {type(obj).__name__}")
    return validate_task_args(obj)


def task_hash(args_json: str) -> bytes:
    """keccak256 of the exact UTF-8 bytes of ``args_json``: the on-chain task hash."""
    if not isinstance(args_json, str):
        raise TypeError(f"task args must be a str, got {type(args_json).__name__}")
    try:
        data = args_json.encode("utf-8")
    except UnicodeEncodeError:
        raise TaskArgsError("task_args", "contains a lone surrogate, not valid UTF-8") from None
    return keccak(data)
