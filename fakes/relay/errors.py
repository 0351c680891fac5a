"""Typed failures of the fake Relay, one per answer the HTTP layer sends back.

A `RelayValidationError` is the protocol's HTTP 400
``{"message": "validation_error", "data": {"field_name": F, "message": M}}``;
a `RelayInternalError` is its HTTP 500 ``{"message": M}``.
"""

from __future__ import annotations

from typing import Any

from hydrogen_harness.client.relay import RelayField, RelayMessage

__all__ = ["RelayInternalError", "RelayServiceError", "RelayValidationError"]


class RelayServiceError(Exception):
    """A request the Relay answers with an error; `body()` is the JSON it sends."""

    status_code: int = 500

    def __init__(self, message: str, field_name: str | None = None) -> None:
        super().__init__(f"{field_name}: {message}" if field_name else message)
        self.message = str(message)
        self.field_name = str(field_name) if field_name is not None else None

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class RelayValidationError(RelayServiceError):
    """HTTP 400: the request is refused, naming the field at fault."""

    status_code = 400

    def __init__(self, field_name: RelayField | str, message: RelayMessage | str) -> None:
        super().__init__(str(message), str(field_name))

    def body(self) -> dict[str, Any]:
        return {"message": "validation_error", "data": {"field_name": self.field_name, "message": self.message}}


class RelayInternalError(RelayServiceError):
    """HTTP 500: the Relay itself cannot answer (e.g. its chain went backwards)."""

    status_code = 500
