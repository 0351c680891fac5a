"""Relay request signatures (PROTOCOL.md 4), with web3 and eth-account only.

The signed bytes are the request's parameters (all but `timestamp` and
`signature`) as Go's `encoding/json` writes them, keys sorted, followed by the
decimal Unix timestamp; the hash is keccak256 and the signature a raw secp256k1
one, sent as 0x + r ++ s ++ v with v in {0, 1} and a low s. The timestamp is the
wall clock: the Relay refuses one more than 60 s from its own.
"""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

__all__ = ["go_json", "sign_request"]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Go's encoding/json escapes these; every other control character becomes \u00XX.
_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}  # fmt: skip


def go_json(params: dict[str, str | int]) -> str:
    """The params as Go's json.Marshal writes them: keys sorted, compact, HTML-safe escapes."""

    def text(s: str) -> str:
        return '"' + "".join(_GO_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in s) + '"'

    return "{" + ",".join(f"{text(k)}:{text(v) if isinstance(v, str) else int(v)}" for k, v in sorted(params.items())) + "}"


def sign_request(params: dict[str, str | int], account: LocalAccount) -> dict[str, Any]:
    """timestamp and signature for a Relay request: raw secp256k1 over keccak(JSON + timestamp)."""
    timestamp = int(time.time())
    digest = Web3.keccak(text=go_json(params) + str(timestamp))
    signed = Account.unsafe_sign_hash(digest, account.key)
    r, s, v = signed.r, signed.s, signed.v - 27  # the Relay wants v in {0, 1}
    if s > SECP256K1_N // 2:  # and low s
        s, v = SECP256K1_N - s, v ^ 1
    signature = "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + f"{v:02x}"
    return {"timestamp": timestamp, "signature": signature}
