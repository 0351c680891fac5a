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

from eth_hash.auto import keccak

from hydrogen_harness.protocol.signing import secp256k1_key

__all__ = ["rlp_encode", "sign_transaction"]

_LEGACY = frozenset({"chainId", "nonce", "gas", "value", "data", "to", "gasPrice"})
_DYNAMIC = frozenset({"chainId", "nonce", "gas", "value", "data", "to", "maxFeePerGas", "maxPriorityFeePerGas"})


def _length_prefix(length: int, short: int) -> bytes:
    if length < 56:
        return bytes([short + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([short + 55 + len(size)]) + size


def rlp_encode(item: int | bytes | list[Any]) -> bytes:
    """RLP of ints (minimal big-endian), bytes and lists of them: the `rlp` package's
    encoding, without its per-field type inference (a tenth of a millisecond a list)."""
    if isinstance(item, list):
        payload = b"".join(rlp_encode(part) for part in item)
        return _length_prefix(len(payload), 0xC0) + payload
    data = item.to_bytes((item.bit_length() + 7) // 8, "big") if isinstance(item, int) else bytes(item)
    if len(data) == 1 and data[0] < 0x80:
        return data
    return _length_prefix(len(data), 0x80) + data


def sign_transaction(key: bytes, tx: dict[str, Any]) -> tuple[bytes, bytes] | None:
    """The raw signed transaction and its hash; None for a shape other than the two
    `Chain` builds (the caller then signs with eth-account)."""
    keys = tx.keys()
    legacy = "gasPrice" in tx
    if not keys <= (_LEGACY if legacy else _DYNAMIC) or "chainId" not in tx or tx["chainId"] is None:
        return None
    data = tx["data"]
    data = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    to = bytes.fromhex(tx["to"].removeprefix("0x")) if tx.get("to") else b""
    chain_id, nonce, gas, value = int(tx["chainId"]), int(tx["nonce"]), int(tx["gas"]), int(tx["value"])
    signer = secp256k1_key(bytes(key))
    if legacy:
        fields: list[Any] = [nonce, int(tx["gasPrice"]), gas, to, value, data]
        signature = signer.sign_recoverable(keccak(rlp_encode([*fields, chain_id, 0, 0])), hasher=None)
        v = 35 + 2 * chain_id + signature[64]
        raw = rlp_encode([*fields, v, int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")])
    else:
        fields = [chain_id, nonce, int(tx["maxPriorityFeePerGas"]), int(tx["maxFeePerGas"]), gas, to, value, data, []]
        signature = signer.sign_recoverable(keccak(b"\x02" + rlp_encode(fields)), hasher=None)
        raw = b"\x02" + rlp_encode([*fields, signature[64], int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")])
    return raw, keccak(raw)
