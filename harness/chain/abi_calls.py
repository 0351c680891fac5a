"""Contract calls encoded straight with eth-abi.

Building a web3 `ContractFunction` validates and normalises every argument through
several layers of formatters; on the fast backends that costs more than running
the call. The bindings know their argument types, so they encode once with eth-abi
and hand `Chain` this small object, which quacks like a ContractFunction where
`Chain` looks (`address`, `fn_name`, `abi`, `_encode_transaction_data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from eth_utils.abi import collapse_if_tuple

__all__ = ["ContractCall", "FunctionTable"]


@dataclass(frozen=True)
class ContractCall:
    address: str
    fn_name: str
    abi: dict[str, Any]
    data: str

    def _encode_transaction_data(self) -> str:
        return self.data


class FunctionTable:
    """Selectors and argument types of a contract's functions, from its ABI."""

    def __init__(self, address: str, abi: Sequence[dict[str, Any]]) -> None:
        self.address = address
        self._functions: dict[str, tuple[dict[str, Any], bytes, list[str]]] = {}
        for entry in abi:
            if entry.get("type") != "function":
                continue
            types = [collapse_if_tuple(item) for item in entry["inputs"]]
            selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
            if entry["name"] in self._functions:
                raise ValueError(f"overloaded function {entry['name']}: not supported by FunctionTable")
            self._functions[entry["name"]] = (entry, selector, types)

    def call(self, name: str, *args: Any) -> ContractCall:
        try:
            entry, selector, types = self._functions[name]
        except KeyError:
            raise AttributeError(f"the contract at {self.address} has no function {name!r}") from None
        if len(args) != len(types):
            raise TypeError(f"{name} takes {len(types)} arguments ({', '.join(types)}), got {len(args)}")
        return ContractCall(self.address, name, entry, "0x" + (selector + encode(types, list(args))).hex())
