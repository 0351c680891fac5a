"""The contracts' ABIs as JSON package data: `harness/chain/abi/{token,node,task}.json`.

Applications in any language load these files (or print them with
`hydrogen-harness abi NAME`) without compiling the Vyper sources. They are
committed, generated from the compiled contracts; a test checks that they still
match, and `python -m hydrogen_harness.chain.abis` rewrites them after a contract change.
"""

from __future__ import annotations

import functools
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["ABI_NAMES", "abi", "abi_text", "compiled_abi", "write_abis"]

ABI_NAMES = ("token", "node", "task")
_CONTRACTS = {"token": "CNX", "node": "Node", "task": "Task"}


def _checked(name: str) -> str:
    if name not in _CONTRACTS:
        raise ValueError(f"unknown contract {name!r}: expected one of {', '.join(ABI_NAMES)}")
    return name


def abi_text(name: str) -> str:
    """The ABI file of contract `name` ("token", "node" or "task"), as shipped."""
    return resources.files("hydrogen_harness.chain").joinpath("abi", f"{_checked(name)}.json").read_text()


@functools.cache
def _loaded(name: str) -> str:
    return abi_text(name)


def abi(name: str) -> list[dict[str, Any]]:
    """The ABI of contract `name` ("token", "node" or "task") as a list (a fresh copy)."""
    loaded: list[dict[str, Any]] = json.loads(_loaded(_checked(name)))
    return loaded


def compiled_abi(name: str) -> list[dict[str, Any]]:
    """The ABI the Vyper compiler gives for contract `name` now."""
    from hydrogen_harness.chain.compiler import compile_contract

    return compile_contract(_CONTRACTS[_checked(name)]).abi


def write_abis(folder: Path | None = None) -> list[Path]:
    """Write every ABI file from the compiled contracts; returns the paths written."""
    target = folder or Path(__file__).resolve().parent / "abi"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ABI_NAMES:
        path = target / f"{name}.json"
        path.write_text(json.dumps(compiled_abi(name), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_abis():
        print(f"wrote {written_path}")
    sys.exit(0)
