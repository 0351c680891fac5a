"""Raw Relay requests, signed by hand, so tests control every byte of a request.

Each method signs the endpoint's parameters with the account at `clock()` unless
the test overrides `timestamp` or `signature` (to forge or expire a request), or
signs different parameters with `signed_params` (a signature over other data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from hydrogen_harness.protocol.signing import sign_request

__all__ = ["MALFORMED", "Wire", "assert_refused", "malformed"]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Ways to spoil a valid signature that the Relay must refuse as "Invalid signature".
# (A well-formed signature by the wrong key, or over other data, is not one of them:
# it recovers to some other address, which then fails the signer check.)
MALFORMED = ("truncated", "not hex", "no 0x", "v is 27", "v is 2", "high s", "zero r")


def malformed(signature: str, kind: str) -> str:
    raw = bytes.fromhex(signature[2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    if kind == "truncated":
        return signature[:-2]
    if kind == "not hex":
        return "0x" + "zz" * 65
    if kind == "no 0x":
        return signature[2:] + "00"
    if kind == "v is 27":
        return "0x" + (raw[:64] + bytes([v + 27])).hex()
    if kind == "v is 2":
        return "0x" + (raw[:64] + b"\x02").hex()
    if kind == "high s":
        # (r, n - s) with the other v is the same signature, malleated.
        return "0x" + (r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([1 - v])).hex()
    if kind == "zero r":
        return "0x" + (bytes(32) + raw[32:]).hex()
    raise ValueError(kind)


def assert_refused(response: httpx.Response, field: str, message: str, *, prefix: bool = False) -> None:
    """The response is the protocol's 400 validation error with this field and message
    (with `prefix`, the message only has to start with `message`)."""
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    assert body["message"] == "validation_error", body
    assert body["data"]["field_name"] == field, body
    if prefix:
        assert body["data"]["message"].startswith(message), body
    else:
        assert body["data"]["message"] == message, body


class Wire:
    def __init__(self, http: httpx.Client, clock: Callable[[], int]) -> None:
        self.http = http
        self.clock = clock

    def _sign(
        self,
        account: LocalAccount,
        params: Mapping[str, Any],
        timestamp: int | None,
        signature: str | None,
        signed_params: Mapping[str, Any] | None,
    ) -> tuple[int, str]:
        timestamp = self.clock() if timestamp is None else timestamp
        if signature is None:
            signature = sign_request(signed_params if signed_params is not None else params, timestamp, account)
        return timestamp, signature

    def post_args(
        self,
        account: LocalAccount,
        task_id: int,
        task_args: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        signed_params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        params = {"task_args": task_args, "task_id": task_id}
        timestamp, signature = self._sign(account, params, timestamp, signature, signed_params)
        return self.http.post("/v1/inference_tasks", json={**params, "timestamp": timestamp, "signature": signature})

    def get_task(
        self,
        account: LocalAccount,
        task_id: int,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        signed_params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        timestamp, signature = self._sign(account, {"task_id": task_id}, timestamp, signature, signed_params)
        return self.http.get(f"/v1/inference_tasks/{task_id}", params={"timestamp": timestamp, "signature": signature})

    def upload(
        self,
        account: LocalAccount,
        task_id: int,
        images: Sequence[bytes],
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        signed_params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        timestamp, signature = self._sign(account, {"task_id": task_id}, timestamp, signature, signed_params)
        files = [("images", (f"{i}.png", image, "image/png")) for i, image in enumerate(images)]
        data = {"timestamp": str(timestamp), "signature": signature}
        return self.http.post(f"/v1/inference_tasks/{task_id}/results", data=data, files=files or None)

    def get_result(
        self,
        account: LocalAccount,
        task_id: int,
        image_num: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        signed_params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        params = {"image_num": image_num, "task_id": task_id}
        timestamp, signature = self._sign(account, params, timestamp, signature, signed_params)
        return self.http.get(
            f"/v1/inference_tasks/{task_id}/results/{image_num}",
            params={"timestamp": timestamp, "signature": signature},
        )
