"""The compiled-contract cache: a cold cache compiles and writes, a warm one is read
without compiling, a damaged entry is compiled again and replaced, and changed
sources get an entry of their own. (The users' suites the tests run through pytester
share the session's cache, so these are where a cold cache is exercised.)"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hydrogen_harness.chain import compiler
from hydrogen_harness.chain.compiler import check_compiles, compile_contract, sources_dir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HYDROGEN_HARNESS_CACHE", str(folder))
    return folder


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the contracts compiled by Vyper (not read from the cache)."""
    seen: list[str] = []
    real: Callable[[str, Path, bool], dict[str, Any]] = compiler._compile

    def counted(name: str, source_dir: Path, optimize: bool) -> dict[str, Any]:
        seen.append(name)
        return real(name, source_dir, optimize)

    monkeypatch.setattr(compiler, "_compile", counted)
    return seen


def test_a_cold_cache_compiles_and_writes_then_a_warm_one_is_read(cache: Path, compiles: list[str]) -> None:
    first = compile_contract("CNX")
    (entry,) = cache.glob("CNX-*.json")
    assert compiles == ["CNX"]
    assert json.loads(entry.read_text())["abi"] == first.abi
    again = compile_contract("CNX")
    assert compiles == ["CNX"]  # read, not compiled
    assert (again.abi, again.bytecode) == (first.abi, first.bytecode)


def test_a_damaged_entry_is_compiled_again_and_replaced(cache: Path, compiles: list[str]) -> None:
    first = compile_contract("CNX")
    (entry,) = cache.glob("CNX-*.json")
    entry.write_text('{"abi": [')
    repaired = compile_contract("CNX")
    assert compiles == ["CNX", "CNX"]
    assert repaired.bytecode == first.bytecode
    assert json.loads(entry.read_text())["abi"] == first.abi


def test_changed_sources_get_an_entry_of_their_own(cache: Path, compiles: list[str], tmp_path: Path) -> None:
    compile_contract("CNX")
    copy = tmp_path / "sources"
    shutil.copytree(sources_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "CNX.vy").write_text((copy / "CNX.vy").read_text() + "\n# a changed copy\n")
    compile_contract("CNX", source_dir=copy)
    assert compiles == ["CNX", "CNX"]
    assert len(list(cache.glob("CNX-*.json"))) == 2


def test_the_unoptimized_check_is_cached_apart_from_the_compiled_contract(cache: Path, compiles: list[str]) -> None:
    check_compiles("CNX", sources_dir())
    check_compiles("CNX", sources_dir())
    assert compiles == ["CNX"]
    compiled = compile_contract("CNX")  # not the check's unoptimized output
    assert compiles == ["CNX", "CNX"]
    assert len(list(cache.glob("CNX-*.json"))) == 2
    bytecodes = {json.loads(entry.read_text())["bytecode"].removeprefix("0x") for entry in cache.glob("CNX-*.json")}
    assert compiled.bytecode.hex() in bytecodes
    assert len(bytecodes) == 2  # the optimizer's output differs from the check's


def test_another_vyper_version_gets_an_entry_of_its_own(cache: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import vyper

    # The key reads the installed distribution's version without importing vyper: the
    # version vyper itself reports. (The unoptimized check shares the key's making and
    # costs a third of a compile.)
    assert compiler._compiler_version() == vyper.__version__
    check_compiles("CNX", sources_dir())
    monkeypatch.setattr(compiler, "_compiler_version", lambda: "0.0.1")
    check_compiles("CNX", sources_dir())
    assert compiles == ["CNX", "CNX"]
    assert len(list(cache.glob("CNX-*.json"))) == 2
