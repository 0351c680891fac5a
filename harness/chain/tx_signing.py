"""Signing the transactions `Chain` builds, byte for byte as eth-account signs them.

eth-account validates and reformats a transaction dict through several layers
before it signs: about 1.5 ms a transaction, a sizeable part of a simulated task
on either backend. `Chain` builds its dicts itself, in two shapes only (EIP-1559
fees, or a legacy gas price with an EIP-155 chain id), so they are RLP-encoded and
signed with libsecp256k1 directly. Its signatures are deterministic (RFC 6979) and
low-s, as eth-account's, so the raw bytes and the hash are the same.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

__all__ = ["sign_transaction"]

_LEGACY = frozenset({"chainId", "nonce", "gas", "value", "data", "to", "gasPrice"})
_DYNAMIC = frozenset({"chainId", "nonce", "gas", "value", "data", "to", "maxFeePerGas", "maxPriorityFeePerGas"})


def sign_transaction(key: bytes, tx: dict[str, Any]) -> tuple[bytes, bytes] | None:
    """The raw signed transaction and its hash; None for a shape other than the two
    `Chain` builds (the caller then signs with eth-account)."""
    import rlp
    from coincurve import PrivateKey

    keys = tx.keys()
    legacy = "gasPrice" in tx
    if not keys <= (_LEGACY if legacy else _DYNAMIC) or "chainId" not in tx or tx["chainId"] is None:
        return None
    data = tx["data"]
    data = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    to = bytes.fromhex(tx["to"].removeprefix("0x")) if tx.get("to") else b""
    chain_id, nonce, gas, value = int(tx["chainId"]), int(tx["nonce"]), int(tx["gas"]), int(tx["value"])
    signer = PrivateKey(bytes(key))
    if legacy:
        fields: list[Any] = [nonce, int(tx["gasPrice"]), gas, to, value, data]
        signature = signer.sign_recoverable(keccak(rlp.encode([*fields, chain_id, 0, 0])), hasher=None)
        v = 35 + 2 * chain_id + signature[64]
        raw = rlp.encode([*fields, v, int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")])
    else:
        fields = [chain_id, nonce, int(tx["maxPriorityFeePerGas"]), int(tx["maxFeePerGas"]), gas, to, value, data, []]
        signature = signer.sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
        raw = b"\x02" + rlp.encode([*fields, signature[64], int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")])
    return raw, keccak(raw)
