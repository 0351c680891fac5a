"""Compiles the reference Vyper contracts, with an on-disk cache.

A compile costs about a tenth of a second per contract, which adds up over many
pytest workers and CLI runs, so outputs are cached by a hash of the sources, the
compiler version and the EVM version. Cache writes are atomic (write, then
rename), so concurrent writers such as pytest-xdist workers never see a torn file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

__all__ = [
    "CompiledContract",
    "EVM_VERSION",
    "cache_dir",
    "check_compiles",
    "compile_contract",
    "contract_source",
    "sources_dir",
]

EVM_VERSION = "prague"
CONTRACT_NAMES = ("CNX", "Node", "Task")


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes


def sources_dir() -> Path:
    return Path(str(resources.files("hydrogen_harness.contract_sources")))


def contract_source(name: str) -> str:
    """The Vyper source of one of the reference contracts (CNX, Node, Task)."""
    path = sources_dir() / f"{name}.vy"
    if not path.is_file():
        raise ValueError(f"unknown contract {name!r}: expected one of {', '.join(CONTRACT_NAMES)}")
    return path.read_text()


def cache_dir() -> Path:
    """Where compiled contracts are cached (HYDROGEN_HARNESS_CACHE overrides)."""
    configured = os.environ.get("HYDROGEN_HARNESS_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hydrogen-harness"


def _compiler_version() -> str:
    # The installed distribution's version, which is what `vyper.__version__` reads:
    # importing vyper itself (its whole compiler) costs a tenth of a second or more in
    # every process that only reads the cache (each sandbox, each pytest worker).
    return metadata.version("vyper")


def _cache_key(name: str, source_dir: Path, optimize: bool = True) -> str:
    digest = hashlib.sha256()
    digest.update(f"{_compiler_version()}|{EVM_VERSION}|{name}".encode())
    if not optimize:
        digest.update(b"|unoptimized")
    # Every module in the folder, since a contract may import any of them.
    for path in sorted(source_dir.glob("*.vy")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _compile(name: str, source_dir: Path, optimize: bool) -> dict[str, Any]:
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import OptimizationLevel, Settings

    path = source_dir / f"{name}.vy"
    level = OptimizationLevel.default() if optimize else OptimizationLevel.NONE
    settings = Settings(evm_version=EVM_VERSION, optimize=level)
    output = vyper.compile_code(
        path.read_text(),
        contract_path=str(path),
        input_bundle=FilesystemInputBundle([source_dir]),
        output_formats=["abi", "bytecode"],
        settings=settings,
    )
    return {"abi": output["abi"], "bytecode": output["bytecode"]}


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _payload(name: str, folder: Path, optimize: bool) -> dict[str, Any]:
    if not (folder / f"{name}.vy").is_file():
        raise ValueError(f"no contract {name!r} in {folder}")
    cached = cache_dir() / f"{name}-{_cache_key(name, folder, optimize)}.json"
    if cached.is_file():
        try:
            entry: dict[str, Any] = json.loads(cached.read_text())
            return entry
        except (OSError, ValueError):
            pass  # a damaged entry is recompiled and replaced
    payload = _compile(name, folder, optimize)
    try:
        _write_atomic(cached, payload)
    except OSError:
        pass  # a read-only cache only costs speed
    return payload


def compile_contract(name: str, source_dir: Path | None = None) -> CompiledContract:
    """Compile contract `name` (CNX, Node or Task), from the cache when possible.

    `source_dir` lets a caller compile a modified copy of the contracts (the
    mutation check does); it defaults to the shipped sources.
    """
    payload = _payload(name, source_dir or sources_dir(), optimize=True)
    bytecode = payload["bytecode"]
    return CompiledContract(name=name, abi=payload["abi"], bytecode=bytes.fromhex(bytecode.removeprefix("0x")))


def check_compiles(name: str, source_dir: Path) -> None:
    """Raise Vyper's error if contract `name` in `source_dir` does not compile to bytecode.

    For a modified copy that only has to be valid (a mutant before its run): every
    stage but the optimizer, about a third of a full compile (cached apart from the
    optimized output, which is what runs).
    """
    _payload(name, source_dir, optimize=False)
