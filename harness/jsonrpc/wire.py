"""The Ethereum JSON-RPC wire format, to and from eth-tester's records.

eth-tester speaks Python: snake_case keys, ints, checksummed addresses, hashes as
0x strings. Clients (web3.py, ethers, go-ethereum) expect what geth sends:
camelCase keys, quantities as 0x hex without leading zeros, data as even-length
0x hex, addresses in lower case, `null` where there is nothing. This module
converts both ways and knows nothing of HTTP or of the chain itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_bloom import BloomFilter
from eth_utils import to_checksum_address

__all__ = [
    "BLOCK_TAGS",
    "WireError",
    "CallRequest",
    "FilterRequest",
    "block_to_wire",
    "data",
    "log_to_wire",
    "parse_address",
    "parse_block_id",
    "parse_bool",
    "parse_call",
    "parse_data",
    "parse_filter",
    "parse_hash",
    "parse_quantity",
    "pool_transaction_to_wire",
    "quantity",
    "receipt_to_wire",
    "transaction_to_wire",
]

BLOCK_TAGS = frozenset({"latest", "earliest", "pending", "safe", "finalized"})
MAX_TOPICS = 4  # LOG0..LOG4


class WireError(ValueError):
    """A parameter that is not in the JSON-RPC format (answered as -32602)."""


# ---------------------------------------------------------------- out: scalars


def quantity(value: int) -> str:
    """A QUANTITY: 0x hex, no leading zeros, "0x0" for zero."""
    return hex(int(value))


def data(value: bytes | bytearray | str) -> str:
    """DATA: 0x + even-length lower-case hex."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = value.lower()
    return text if text.startswith("0x") else "0x" + text


def _address(value: Any) -> str | None:
    if value in (None, "", b""):
        return None
    return data(value)


# Keys whose eth-tester value is an int but whose wire form is DATA, not QUANTITY.
_FIXED_WIDTH_INTS = {"logs_bloom": 256}

_CAMEL = {
    "data": "input",  # transactions only; logs keep "data" (handled by the caller)
    "coinbase": "miner",
}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        width = _FIXED_WIDTH_INTS.get(key)
        return data(value.to_bytes(width, "big")) if width else quantity(value)
    if isinstance(value, (bytes, bytearray)):
        return data(value)
    if isinstance(value, str):
        return data(value) if value.startswith("0x") else value
    if isinstance(value, Mapping):
        return {_camel(k): _value(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(key, item) for item in value]
    raise TypeError(f"cannot put {type(value).__name__} on the wire (key {key})")


# ---------------------------------------------------------------- out: records


def transaction_to_wire(tx: Mapping[str, Any]) -> dict[str, Any]:
    """An eth-tester transaction as geth returns it from eth_getTransactionByHash."""
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if key in ("from", "to"):
            out[key] = _address(value)
        else:
            out[_CAMEL.get(key) or _camel(key)] = _value(key, value)
    if out.get("type") == "0x0" and "chainId" not in out:
        # A legacy EIP-155 transaction carries its chain id in v (v = 2 id + 35 + parity).
        v = int(tx.get("v", 0))
        if v >= 35:
            out["chainId"] = quantity((v - 35) // 2)
    if out.get("type") != "0x0" and "yParity" not in out and "v" in out:
        out["yParity"] = out["v"]
    return out


def pool_transaction_to_wire(evm: Any, tx_hash: str, sender: str) -> dict[str, Any]:
    """A py-evm transaction not yet in a block, as geth returns a pending one."""
    type_id = getattr(evm, "type_id", None)
    out: dict[str, Any] = {
        "blockHash": None,
        "blockNumber": None,
        "transactionIndex": None,
        "hash": tx_hash,
        "from": sender.lower(),
        "to": data(evm.to) if evm.to else None,
        "nonce": quantity(evm.nonce),
        "value": quantity(evm.value),
        "gas": quantity(evm.gas),
        "input": data(evm.data),
        "type": quantity(type_id or 0),
        "r": quantity(evm.r),
        "s": quantity(evm.s),
    }
    if type_id is None:
        out["gasPrice"] = quantity(evm.gas_price)
        out["v"] = quantity(evm.v)
        if evm.v >= 35:
            out["chainId"] = quantity((evm.v - 35) // 2)
        return out
    out["chainId"] = quantity(evm.chain_id)
    out["yParity"] = out["v"] = quantity(evm.y_parity)
    out["accessList"] = [
        {"address": data(address), "storageKeys": [data(int(k).to_bytes(32, "big")) for k in keys]}
        for address, keys in evm.access_list
    ]
    if type_id >= 2:
        out["maxFeePerGas"] = quantity(evm.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = quantity(evm.max_priority_fee_per_gas)
        out["gasPrice"] = quantity(evm.max_fee_per_gas)  # geth: the cap, until a block sets the price
    else:
        out["gasPrice"] = quantity(evm.gas_price)
    return out


def log_to_wire(log: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        "address": _address(log["address"]),
        "topics": [data(topic) for topic in log["topics"]],
        "data": data(log["data"]),
        "blockNumber": _value("block_number", log.get("block_number")),
        "blockHash": _value("block_hash", log.get("block_hash")),
        "transactionHash": _value("transaction_hash", log.get("transaction_hash")),
        "transactionIndex": _value("transaction_index", log.get("transaction_index")),
        "logIndex": _value("log_index", log.get("log_index")),
        "removed": False,
    }
    if log.get("block_timestamp") is not None:  # execution-apis#639: geth 1.16, anvil
        out["blockTimestamp"] = quantity(log["block_timestamp"])
    return out


def _bloom(logs: Sequence[Mapping[str, Any]]) -> str:
    bloom = BloomFilter()
    for log in logs:
        bloom.add(bytes.fromhex(data(log["address"])[2:]))
        for topic in log["topics"]:
            bloom.add(bytes.fromhex(data(topic)[2:]))
    return data(int(bloom).to_bytes(256, "big"))


def receipt_to_wire(receipt: Mapping[str, Any], logs: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """An eth-tester receipt as geth returns it (with the logs bloom geth clients require).

    eth-tester numbers a receipt's logs from 0 in each transaction; pass the block's own
    records of this transaction's logs as `logs` for block-wide indexes, as geth gives."""
    logs = list(logs if logs is not None else receipt.get("logs") or ())
    out: dict[str, Any] = {
        "transactionHash": data(receipt["transaction_hash"]),
        "transactionIndex": quantity(receipt["transaction_index"]),
        "blockHash": data(receipt["block_hash"]),
        "blockNumber": quantity(receipt["block_number"]),
        "from": _address(receipt.get("from")),
        "to": _address(receipt.get("to")),
        "cumulativeGasUsed": quantity(receipt["cumulative_gas_used"]),
        "gasUsed": quantity(receipt["gas_used"]),
        "effectiveGasPrice": quantity(receipt.get("effective_gas_price") or 0),
        "contractAddress": _address(receipt.get("contract_address")),
        "logs": [log_to_wire(log) for log in logs],
        "logsBloom": _bloom(logs),
        "type": receipt.get("type") or "0x0",
        "status": quantity(receipt["status"]),
    }
    for key in ("blob_gas_used", "blob_gas_price"):
        if receipt.get(key) is not None:
            out[_camel(key)] = quantity(receipt[key])
    return out


def block_to_wire(block: Mapping[str, Any], extra_data: bytes | None = None, pending: bool = False) -> dict[str, Any]:
    """An eth-tester block as geth returns it.

    eth-tester pads `extraData` to 32 bytes; pass the header's real bytes as
    `extra_data` so that clients which hash the header (go-ethereum) get the
    block's true hash.
    """
    out: dict[str, Any] = {}
    for key, value in block.items():
        if key == "transactions":
            out[key] = [data(tx) if isinstance(tx, (str, bytes)) else transaction_to_wire(tx) for tx in value]
        elif key == "coinbase":
            out["miner"] = _address(value)
        else:
            out[_camel(key)] = _value(key, value)
    if extra_data is not None:
        out["extraData"] = data(extra_data)
    out.setdefault("uncles", [])
    if pending:
        # geth leaves what mining decides empty in the pending block.
        out.update({"hash": None, "nonce": None, "miner": None})
    return out


# ---------------------------------------------------------------- in


def parse_quantity(value: Any, name: str = "quantity") -> int:
    """A QUANTITY as clients send it: 0x hex, or (leniently) a JSON number or decimal text."""
    if isinstance(value, bool):
        raise WireError(f"{name} must be a hex quantity, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise WireError(f"{name} must not be negative, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if text[:2] in ("0x", "0X"):
                return int(text[2:] or "0", 16)
            if text.isdigit():
                return int(text)
        except ValueError:
            pass
    raise WireError(f"{name} must be a hex quantity such as 0x1a, got {value!r}")


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise WireError(f"{name} must be true or false, got {value!r}")


def parse_data(value: Any, name: str = "data") -> str:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise WireError(f"{name} must be 0x-prefixed hex, got {value!r}")
    digits = value[2:]
    if len(digits) % 2:
        raise WireError(f"{name} must have an even number of hex digits, got {value!r}")
    try:
        bytes.fromhex(digits)
    except ValueError:
        raise WireError(f"{name} is not valid hex: {value!r}") from None
    return "0x" + digits.lower()


def parse_hash(value: Any, name: str = "hash") -> str:
    text = parse_data(value, name)
    if len(text) != 66:
        raise WireError(f"{name} must be 32 bytes, got {value!r}")
    return text


def parse_address(value: Any, name: str = "address") -> str:
    text = parse_data(value, name)
    if len(text) != 42:
        raise WireError(f"{name} must be a 20-byte address, got {value!r}")
    return to_checksum_address(text)


def parse_block_id(value: Any, default: str = "latest") -> str | int | dict[str, Any]:
    """A block tag, a block number, or an EIP-1898 object ({blockHash} or {blockNumber})."""
    if value is None:
        return default
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    if isinstance(value, Mapping):
        if "blockHash" in value:
            return {"blockHash": parse_hash(value["blockHash"], "blockHash")}
        if "blockNumber" in value:
            return parse_block_id(value["blockNumber"], default)
        raise WireError(f"a block object needs blockHash or blockNumber, got {dict(value)!r}")
    try:
        return parse_quantity(value, "block number")
    except WireError:
        raise WireError(f"block must be a number or one of {', '.join(sorted(BLOCK_TAGS))}, got {value!r}") from None


@dataclass(frozen=True)
class CallRequest:
    """A transaction object of eth_call / eth_estimateGas, in eth-tester's keys.

    `fees_given` tells whether the caller priced the call: geth charges (and so
    checks the balance of) a priced call only.
    """

    sender: str
    fields: dict[str, Any]
    fees_given: bool


_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_CALL_QUANTITIES = {
    "gas": "gas",
    "gasPrice": "gas_price",
    "maxFeePerGas": "max_fee_per_gas",
    "maxPriorityFeePerGas": "max_priority_fee_per_gas",
    "value": "value",
    "nonce": "nonce",
    "chainId": "chain_id",
}
_FEE_KEYS = ("gas_price", "max_fee_per_gas", "max_priority_fee_per_gas")


def parse_call(value: Any) -> CallRequest:
    if not isinstance(value, Mapping):
        raise WireError(f"the transaction must be an object, got {value!r}")
    sender = parse_address(value["from"], "from") if value.get("from") else to_checksum_address(_ZERO_ADDRESS)
    fields: dict[str, Any] = {"from": sender}
    if value.get("to") is not None:
        fields["to"] = parse_address(value["to"], "to")
    payload = value.get("input", value.get("data"))
    if payload is not None:
        fields["data"] = parse_data(payload, "input")
    for wire_key, key in _CALL_QUANTITIES.items():
        if value.get(wire_key) is not None:
            fields[key] = parse_quantity(value[wire_key], wire_key)
    if value.get("accessList"):
        fields["access_list"] = _access_list(value["accessList"])
    return CallRequest(sender=sender, fields=fields, fees_given=any(k in fields for k in _FEE_KEYS))


def _access_list(raw: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or not all(isinstance(entry, Mapping) for entry in raw):
        raise WireError(f"accessList must be a list of {{address, storageKeys}} objects, got {raw!r}"[:200])
    entries = []
    for entry in raw:
        keys = entry.get("storageKeys") or []
        if not isinstance(keys, list):
            raise WireError(f"accessList storageKeys must be a list, got {keys!r}"[:200])
        entries.append(
            {
                "address": parse_address(entry.get("address"), "accessList address"),
                "storage_keys": tuple(parse_hash(k, "storage key") for k in keys),
            }
        )
    return tuple(entries)


@dataclass(frozen=True)
class FilterRequest:
    """eth_getLogs / eth_newFilter parameters, in eth-tester's terms."""

    from_block: str | int | None
    to_block: str | int | None
    addresses: list[str] | None
    topics: list[Any] | None
    block_hash: str | None


def _topic(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        # An OR of topics; an empty or null-containing list matches anything at that position.
        if not value or any(item is None for item in value):
            return None
        return [parse_hash(item, "topic") for item in value]
    return parse_hash(value, "topic")


def parse_filter(value: Any) -> FilterRequest:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise WireError(f"the filter must be an object, got {value!r}")
    address = value.get("address")
    if address is None:
        addresses = None
    elif isinstance(address, str):
        addresses = [parse_address(address)]
    elif isinstance(address, list):
        addresses = [parse_address(item) for item in address] or None
    else:
        raise WireError(f"address must be an address or a list of them, got {address!r}")
    topics = value.get("topics")
    if topics is not None and not isinstance(topics, list):
        raise WireError(f"topics must be a list, got {topics!r}"[:200])
    if topics is not None and len(topics) > MAX_TOPICS:
        raise WireError(f"exceed max topics: {len(topics)} given, a log has at most {MAX_TOPICS}")
    block_hash = value.get("blockHash")
    if block_hash is not None and (value.get("fromBlock") is not None or value.get("toBlock") is not None):
        raise WireError("blockHash cannot be combined with fromBlock or toBlock")

    def bound(key: str) -> str | int | None:
        raw = value.get(key)
        if raw is None:
            return None
        parsed = parse_block_id(raw)
        if isinstance(parsed, dict):
            raise WireError(f"{key} must be a block number or tag")
        return parsed

    return FilterRequest(
        from_block=bound("fromBlock"),
        to_block=bound("toBlock"),
        addresses=addresses,
        topics=[_topic(t) for t in topics] if topics else None,
        block_hash=parse_hash(block_hash, "blockHash") if block_hash is not None else None,
    )
