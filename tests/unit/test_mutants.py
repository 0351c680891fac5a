"""The mutation check's mutants still apply to the shipped contracts and compile.

`make mutation` refuses to run when a pattern has gone stale; this keeps a contract
edit that breaks a mutant from waiting until someone runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.mutation import MUTANTS, Mutant, MutantError, apply, copy_contracts
from hydrogen_harness.chain.compiler import check_compiles


def _copy(folder: Path) -> Path:
    copy_contracts(folder)
    return folder


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_applies_once_and_compiles(mutant: Mutant, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    original = (folder / mutant.file).read_text()
    apply(mutant, folder)
    mutated = (folder / mutant.file).read_text()
    assert mutated != original
    assert mutated == original.replace(mutant.find, mutant.replace)
    check_compiles(Path(mutant.file).stem, folder)


def test_mutant_names_are_unique() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))


def test_stale_pattern_is_an_error(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    stale = Mutant("stale", "a rule", "Task.vy", "this text is not in Task.vy", "")
    with pytest.raises(MutantError, match="occurs 0 times"):
        apply(stale, folder)


def test_repeated_pattern_is_an_error(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "Task.vy").write_text("x = 1\nx = 1\n")
    with pytest.raises(MutantError, match="occurs 2 times"):
        apply(Mutant("twice", "a rule", "Task.vy", "x = 1\n", "x = 2\n"), folder)


def test_a_mutant_that_does_not_compile_is_refused(tmp_path: Path) -> None:
    from vyper.exceptions import VyperException

    folder = _copy(tmp_path)
    source = folder / "Node.vy"
    source.write_text(source.read_text() + "\n\n@external\ndef broken() -> uint256:\n    return True\n")
    with pytest.raises(VyperException):
        check_compiles("Node", folder)
    with pytest.raises(ValueError, match="no contract 'Nodes'"):
        check_compiles("Nodes", folder)
