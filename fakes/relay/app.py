"""The fake Relay's HTTP app: the real Relay's four task endpoints over `RelayService`.

Every malformed request (bad JSON, a missing or mistyped field, a path parameter
that is not an unsigned 64-bit decimal) is answered 400 in the protocol's
validation_error shape, naming the field, instead of FastAPI's 422; unknown paths
are 404, wrong methods 405, and a 500 means a bug or a Relay that lost its chain.

Bodies are bounded before anything parses them (`_BodyLimit`): a multipart upload
to MAX_UPLOAD_BYTES, any other body (JSON) to MAX_JSON_BODY_BYTES and 64 levels of
nesting, each answered 400 on field `body` past its bound.

Parameters are bound as the real (Go) Relay binds them: `task_id` is a uint64,
`timestamp` an int64, both plain decimals; `image_num` any string, checked by
the service after the signature (the signed JSON carries it as a string).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hydrogen_harness.boundary.asgi_body import BodyTooLarge, read_body, replay
from hydrogen_harness.client.relay import RelayField, RelayTask

from hydrogen_harness.fakes.relay.blocking import run_blocking
from hydrogen_harness.fakes.relay.errors import RelayServiceError, RelayValidationError
from hydrogen_harness.fakes.relay.images import MAX_IMAGE_BYTES, MAX_IMAGES, MAX_UPLOAD_BYTES, MAX_UPLOAD_DECODED_BYTES
from hydrogen_harness.fakes.relay.json_limits import MAX_JSON_BODY_BYTES, may_nest_too_deep, too_deep
from hydrogen_harness.fakes.relay.records import task_json
from hydrogen_harness.fakes.relay.service import RelayService

__all__ = ["create_app"]

MAX_UINT64 = 2**64 - 1
MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1
# Multipart parts beyond the 10 images still parse, so that 11-64 files get the
# clear "Too many images" answer; more than this is refused by the parser.
_MAX_FORM_FILES = 64

_UNSIGNED = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")


def _decimal(pattern: re.Pattern[str], what: str) -> Callable[[Any], Any]:
    # pydantic turns "+1", " 1" and "1_000" into 1; Go's strconv does not.
    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return check


# Path/Query before the validator: the other order hides the bounds from OpenAPI.
TaskIdPath = Annotated[
    int,
    Path(ge=0, le=MAX_UINT64, description="The on-chain task id (uint64)"),
    BeforeValidator(_decimal(_UNSIGNED, "an unsigned decimal integer")),
]
TimestampQuery = Annotated[
    int,
    Query(ge=MIN_INT64, le=MAX_INT64, description="Unix seconds of the signature"),
    BeforeValidator(_decimal(_SIGNED, "a decimal integer")),
]
SignatureQuery = Annotated[str, Query(description="0x + hex of r, s, v (v = 0 or 1)")]


# ---------------------------------------------------------------- wire models


class TaskArgsUpload(BaseModel):
    """The JSON body of `POST /v1/inference_tasks`. Types are strict, as Go's decoder is."""

    model_config = ConfigDict(strict=True, extra="ignore")

    task_args: str = Field(description="The task-args JSON string whose keccak256 is the on-chain task hash")
    task_id: int = Field(ge=0, le=MAX_UINT64)
    timestamp: int = Field(ge=MIN_INT64, le=MAX_INT64)
    signature: str


class _ErrorData(BaseModel):
    field_name: str
    message: str


class ValidationErrorBody(BaseModel):
    message: Literal["validation_error"]
    data: _ErrorData


class ErrorBody(BaseModel):
    message: str


class SuccessBody(BaseModel):
    message: Literal["success"]


class TaskBody(BaseModel):
    message: Literal["success"]
    data: RelayTask


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrorBody, "description": "Refused: the field at fault and why"},
    500: {"model": ErrorBody, "description": "The Relay failed"},
}

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["timestamp", "signature", "images"],
                    "properties": {
                        "timestamp": {"type": "integer", "minimum": MIN_INT64, "maximum": MAX_INT64},
                        "signature": {"type": "string"},
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": MAX_IMAGES,
                            "description": (
                                f"PNG images in image order; at most {MAX_IMAGE_BYTES} bytes each, "
                                f"{MAX_UPLOAD_BYTES} bytes per request and {MAX_UPLOAD_DECODED_BYTES} bytes "
                                "decoded per upload (as Go's PNG decoder allocates them)"
                            ),
                        },
                    },
                }
            }
        },
    }
}

_PNG_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The PNG bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


# ---------------------------------------------------------------- errors


def _field_of(loc: tuple[Any, ...]) -> str:
    # loc is ("body" | "query" | "path", name, ...) or ("body",) for the whole body.
    if len(loc) >= 2 and isinstance(loc[1], str):
        return loc[1]
    return RelayField.BODY


def _validation_answer(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    loc = tuple(first.get("loc", ()))
    kind = first.get("type")
    if kind == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        error = RelayValidationError(RelayField.BODY, f"Malformed JSON: {detail}".rstrip(": "))
    elif loc == ("body",) and kind in ("model_attributes_type", "dict_type", "missing"):
        error = RelayValidationError(RelayField.BODY, "The body must be a JSON object")
    else:
        message = str(first.get("msg", "Invalid value")).removeprefix("Value error, ")
        error = RelayValidationError(_field_of(loc), message)
    return JSONResponse(error.body(), status_code=400)


def _unparsed_body(exc: StarletteHTTPException) -> RelayValidationError:
    """FastAPI's 400 for a body it could not parse, saying why: not UTF-8, or (a
    ValueError from json.loads) an integer of more than 4,300 digits."""
    cause = exc.__cause__
    if isinstance(cause, BodyTooLarge):
        return _too_large(cause.limit)
    if isinstance(cause, ValueError) and not isinstance(cause, UnicodeError):
        # Python's advice on raising the digit limit is for us, not for the client.
        reason = str(cause).split(";")[0]
        return RelayValidationError(RelayField.BODY, f"Malformed JSON: {reason}")
    return RelayValidationError(RelayField.BODY, f"Malformed body: {exc.detail}")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_answer(exc)

    @app.exception_handler(RelayServiceError)
    async def on_refusal(_: Request, exc: RelayServiceError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "There was an error parsing the body"
            return JSONResponse(_unparsed_body(exc).body(), status_code=400)
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_bug(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"message": f"Internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def _install_openapi(app: FastAPI) -> None:
    """Document 400 (our validation answers) where FastAPI would document 422."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# ---------------------------------------------------------------- request size and nesting


def _too_large(limit: int = MAX_UPLOAD_BYTES) -> RelayValidationError:
    return RelayValidationError(RelayField.BODY, f"Request too large: at most {limit} bytes")


async def _answer(error: RelayValidationError, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse(error.body(), status_code=error.status_code)(scope, receive, send)


class _BodyLimit:
    """ASGI middleware: bound every request body before the app parses it.

    A multipart body (the images upload) may be up to MAX_UPLOAD_BYTES; it is
    streamed to the app, and `receive` raises `BodyTooLarge` once it passes the
    limit (the handlers below answer 400). Any other body is one FastAPI may parse
    as JSON: it is read here whole, up to MAX_JSON_BODY_BYTES, refused if it nests
    too deeply for the C JSON parser (see `json_limits`), then handed on. A declared
    Content-Length over the limit is answered at once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        limit = MAX_UPLOAD_BYTES if multipart else MAX_JSON_BODY_BYTES
        length = headers.get(b"content-length", b"")
        # Length first: int() refuses strings over 4,300 digits with a ValueError.
        if length.isdigit() and (len(length) > 20 or int(length) > limit):
            await _answer(_too_large(limit), scope, receive, send)
            return
        if multipart:
            await self.app(scope, _limited(receive, limit), send)
            return
        try:
            body = await read_body(receive, limit)
        except BodyTooLarge:
            await _answer(_too_large(limit), scope, receive, send)
            return
        # Measuring a large body takes a while: not on the event loop (and ordinary
        # bodies, with a few brackets, not at all).
        refusal = await run_blocking(too_deep, body) if may_nest_too_deep(body) else None
        if refusal is not None:
            await _answer(RelayValidationError(RelayField.BODY, f"Malformed JSON: {refusal}"), scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return limited_receive


# ---------------------------------------------------------------- multipart


async def _read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=_MAX_FORM_FILES)
    except BodyTooLarge as exc:
        raise _too_large(exc.limit) from None
    except StarletteHTTPException as exc:  # the multipart parser's complaints
        raise RelayValidationError(RelayField.BODY, f"Malformed multipart body: {exc.detail}") from None


def _form_text(form: FormData, name: RelayField) -> str:
    value = form.get(name)
    if value is None:
        raise RelayValidationError(name, "Field required")
    if not isinstance(value, str):
        raise RelayValidationError(name, "must be a form field, not a file")
    return value


def _form_timestamp(form: FormData) -> int:
    text = _form_text(form, RelayField.TIMESTAMP)
    # An int64 has at most 19 significant digits (Go accepts leading zeros); int()
    # would raise a ValueError, a 500, on more than 4,300.
    if not _SIGNED.fullmatch(text) or len(text.lstrip("-").lstrip("0")) > 19 or not MIN_INT64 <= int(text) <= MAX_INT64:
        raise RelayValidationError(RelayField.TIMESTAMP, "must be a decimal integer (int64)")
    return int(text)


async def _form_images(form: FormData) -> list[bytes]:
    images = []
    for item in form.getlist(RelayField.IMAGES):
        if not isinstance(item, UploadFile):
            raise RelayValidationError(RelayField.IMAGES, "images must be uploaded as files")
        images.append(await item.read())
    return images


# ---------------------------------------------------------------- the app


def create_app(service: RelayService) -> FastAPI:
    """The Relay's HTTP API over `service` (OpenAPI at /openapi.json)."""
    app = FastAPI(
        title="Crynux Hydrogen Network Relay (fake)",
        version="1.0.0",
        description="The H-net Relay's task endpoints, as PROTOCOL.md section 4 describes them.",
        redirect_slashes=False,
    )
    app.state.relay = service
    app.add_middleware(_BodyLimit)
    _install_error_handlers(app)
    _install_openapi(app)

    @app.post("/v1/inference_tasks", responses={200: {"model": TaskBody}, **_ERRORS}, response_model=None)
    async def upload_task_args(body: TaskArgsUpload) -> JSONResponse:
        task = await run_blocking(service.upload_task_args, body.task_id, body.task_args, body.timestamp, body.signature)
        return JSONResponse({"message": "success", "data": task_json(task, with_nodes=False)})

    @app.get("/v1/inference_tasks/{task_id}", responses={200: {"model": TaskBody}, **_ERRORS}, response_model=None)
    async def get_task(task_id: TaskIdPath, timestamp: TimestampQuery, signature: SignatureQuery) -> JSONResponse:
        task = await run_blocking(service.get_task, task_id, timestamp, signature)
        return JSONResponse({"message": "success", "data": task_json(task, with_nodes=True)})

    @app.post(
        "/v1/inference_tasks/{task_id}/results",
        responses={200: {"model": SuccessBody}, **_ERRORS},
        response_model=None,
        openapi_extra=_UPLOAD_BODY,
    )
    async def upload_results(task_id: TaskIdPath, request: Request) -> JSONResponse:
        form = await _read_form(request)
        try:
            timestamp = _form_timestamp(form)
            signature = _form_text(form, RelayField.SIGNATURE)
            images = await _form_images(form)
        finally:
            await form.close()
        await run_blocking(service.upload_results, task_id, images, timestamp, signature)
        return JSONResponse({"message": "success"})

    @app.get(
        "/v1/inference_tasks/{task_id}/results/{image_num:path}",
        responses={**_PNG_ANSWER, **_ERRORS},
        response_class=Response,
    )
    async def get_result(
        task_id: TaskIdPath,
        image_num: Annotated[str, Path(description="The image's index, from 0, as a string")],
        timestamp: TimestampQuery,
        signature: SignatureQuery,
    ) -> Response:
        image = await run_blocking(service.get_result, task_id, image_num, timestamp, signature)
        return Response(
            content=image,
            media_type="application/octet-stream",
            # image_num is a plain decimal here (the service refused anything else).
            headers={"Content-Disposition": f"attachment; filename={image_num}.png"},
        )

    return app
