"""JSON-RPC wire objects as the execution-apis schemas describe them, and a field-by-field
comparison of two answers (ours and anvil's) that reports every difference at once.

A value's *kind* is what a client's decoder needs: a hex quantity ("0x0", "0x1a", no
leading zeros), hex data of a given length, an address, a bool, a list, or null. Two
answers agree when they have the same keys, every field has an allowed kind on both
sides, and every value is equal except where a difference is accepted (the caller
says which fields may differ, and which keys only anvil sends).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

__all__ = [
    "BLOCK",
    "LOG",
    "PENDING_BLOCK",
    "RECEIPT",
    "TRANSACTION",
    "compare",
    "kind_problems",
    "kind_of",
]

_QUANTITY = re.compile(r"^0x(0|[1-9a-f][0-9a-f]*)$")
_DATA = re.compile(r"^0x([0-9a-fA-F]{2})*$")

# Kinds. "dataN" is hex data of N bytes; "data" any length.
Q, DATA, HASH, ADDRESS, BLOOM, NONCE8 = "quantity", "data", "data32", "data20", "data256", "data8"
BOOL, LIST, NULL, NUMBER, STRING = "bool", "list", "null", "number", "string"


def kind_of(value: Any) -> set[str]:
    """Every kind `value` conforms to ("0x1a" is a quantity and 1 byte of data)."""
    if value is None:
        return {NULL}
    if isinstance(value, bool):
        return {BOOL}
    if isinstance(value, int | float):
        return {NUMBER}
    if isinstance(value, list):
        return {LIST}
    if isinstance(value, dict):
        return {"object"}
    kinds = {STRING}
    if isinstance(value, str):
        if _QUANTITY.match(value):
            kinds.add(Q)
        if _DATA.match(value):
            kinds.add(DATA)
            kinds.add(f"data{(len(value) - 2) // 2}")
    return kinds


# Fields of each object and their allowed kinds (execution-apis: block.yaml,
# transaction.yaml, receipt.yaml). A field absent from a spec is reported as unknown.
BLOCK: dict[str, tuple[str, ...]] = {
    "number": (Q,), "hash": (HASH,), "parentHash": (HASH,), "nonce": (NONCE8,), "sha3Uncles": (HASH,),
    "logsBloom": (BLOOM,), "transactionsRoot": (HASH,), "receiptsRoot": (HASH,), "stateRoot": (HASH,),
    "miner": (ADDRESS,), "difficulty": (Q,), "totalDifficulty": (Q,), "mixHash": (HASH,), "size": (Q,),
    "extraData": (DATA,), "gasLimit": (Q,), "gasUsed": (Q,), "timestamp": (Q,), "transactions": (LIST,),
    "uncles": (LIST,), "baseFeePerGas": (Q,), "withdrawals": (LIST,), "withdrawalsRoot": (HASH,),
    "parentBeaconBlockRoot": (HASH,), "blobGasUsed": (Q,), "excessBlobGas": (Q,), "requestsHash": (HASH,),
}  # fmt: skip
# geth nulls these in the pending block (it has no final header yet); anvil fills them.
PENDING_BLOCK = {**BLOCK, "hash": (HASH, NULL), "nonce": (NONCE8, NULL), "miner": (ADDRESS, NULL)}
TRANSACTION: dict[str, tuple[str, ...]] = {
    "type": (Q,), "hash": (HASH,), "nonce": (Q,), "blockHash": (HASH, NULL), "blockNumber": (Q, NULL),
    "transactionIndex": (Q, NULL), "from": (ADDRESS,), "to": (ADDRESS, NULL), "value": (Q,), "gas": (Q,),
    "input": (DATA,), "chainId": (Q,), "accessList": (LIST,), "maxFeePerGas": (Q,),
    "maxPriorityFeePerGas": (Q,), "gasPrice": (Q,), "v": (Q,), "r": (Q,), "s": (Q,), "yParity": (Q,),
    "blockTimestamp": (Q, NUMBER),
}  # fmt: skip
RECEIPT: dict[str, tuple[str, ...]] = {
    "transactionHash": (HASH,), "transactionIndex": (Q,), "blockHash": (HASH,), "blockNumber": (Q,),
    "from": (ADDRESS,), "to": (ADDRESS, NULL), "cumulativeGasUsed": (Q,), "gasUsed": (Q,),
    "effectiveGasPrice": (Q,), "contractAddress": (ADDRESS, NULL), "logs": (LIST,), "logsBloom": (BLOOM,),
    "type": (Q,), "status": (Q,), "blobGasPrice": (Q,), "blockTimestamp": (Q, NUMBER),
}  # fmt: skip
LOG: dict[str, tuple[str, ...]] = {
    "address": (ADDRESS,), "topics": (LIST,), "data": (DATA,), "blockNumber": (Q,), "blockHash": (HASH,),
    "blockTimestamp": (Q,), "transactionHash": (HASH,), "transactionIndex": (Q,), "logIndex": (Q,),
    "removed": (BOOL,),
}  # fmt: skip


def kind_problems(obj: Mapping[str, Any], spec: Mapping[str, tuple[str, ...]], where: str) -> list[str]:
    """Fields of `obj` whose value is not of an allowed kind, or that the spec does not know."""
    problems = []
    for key, value in obj.items():
        allowed = spec.get(key)
        if allowed is None:
            problems.append(f"{where}.{key}: not a field of this object ({value!r:.60})")
        elif not kind_of(value) & set(allowed):
            problems.append(f"{where}.{key}: {value!r:.80} is not {' or '.join(allowed)}")
    return problems


def _same(a: Any, b: Any) -> bool:
    # Addresses and hex data compare case-insensitively (checksums are presentation).
    if isinstance(a, str) and isinstance(b, str) and a.startswith("0x") and b.startswith("0x"):
        return a.lower() == b.lower()
    return bool(a == b)


def compare(
    ours: Mapping[str, Any],
    anvil: Mapping[str, Any],
    spec: Mapping[str, tuple[str, ...]],
    where: str,
    *,
    may_differ: Collection[str] = (),
    anvil_only: Collection[str] = (),
) -> list[str]:
    """Every difference between two answers for the same object, as readable lines.

    `may_differ`: fields whose values differ legitimately (both still checked for kind).
    `anvil_only`: keys anvil sends that we need not (accepted). Keys only we send, or
    anvil sends without it being accepted, are differences."""
    problems = kind_problems(ours, spec, f"ours {where}") + kind_problems(anvil, spec, f"anvil {where}")
    for key in sorted(set(anvil) - set(ours) - set(anvil_only)):
        problems.append(f"{where}.{key}: anvil sends {anvil[key]!r:.80}, ours has no such key")
    for key in sorted(set(ours) - set(anvil)):
        problems.append(f"{where}.{key}: ours sends {ours[key]!r:.80}, anvil has no such key")
    for key in sorted(set(ours) & set(anvil)):
        if key in may_differ:
            continue
        a, b = ours[key], anvil[key]
        if not _same(a, b):
            problems.append(f"{where}.{key}: ours {a!r:.100} != anvil {b!r:.100}")
    return problems
