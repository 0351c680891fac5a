"""Mutation check of the property tests (`make mutation`, `python -m bench.mutation`).

Each mutant breaks one payment, refund or registry rule of PROTOCOL.md by a text
substitution in a copy of contracts/*.vy. The property tests (tests/properties) then
run against the mutated contracts (HYDROGEN_CONTRACTS_DIR, the `mutation` Hypothesis
profile: fixed seed, no shrinking, no example database) in a subprocess; a mutant is
caught when a test fails. The unmutated copy must pass first, under the same profile.

A substitution whose pattern is not found exactly once fails the whole check before
anything runs, so an edit of the contracts cannot silently disable a mutant. A mutant
that does not compile fails it too.

    python -m bench.mutation                 # every mutant; exit 1 if any is missed
    python -m bench.mutation --list          # the mutants
    python -m bench.mutation --only pay-d0-not-d1 --only skip-illegal-refund
    python -m bench.mutation --seed 7        # another seed than the profile's fixed one
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hydrogen_harness.chain.compiler import compile_contract, sources_dir

__all__ = ["MUTANTS", "Mutant", "MutantError", "apply", "copy_contracts", "main"]

ROOT = Path(__file__).resolve().parent.parent
# The machine first: most mutants break settlement, and -x stops at the first failure.
TEST_FILES = ("tests/properties/test_settlement_machine.py", "tests/properties/test_pure.py")
DEFAULT_TIMEOUT = 900


class MutantError(Exception):
    """A mutant that cannot be applied or compiled: the check itself is broken."""


@dataclass(frozen=True)
class Mutant:
    name: str
    rule: str  # the protocol rule it breaks, in PROTOCOL.md's words
    file: str
    find: str
    replace: str


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "pay-d0-not-d1",
        "|d|=2 similar: pay d1 (the result node d0 is paid later) -- pays d0 instead",
        "Task.vy",
        "            self.tasks[taskId].isSuccess = True\n            self._pay(taskId, r1)\n",
        "            self.tasks[taskId].isSuccess = True\n            self._pay(taskId, r0)\n",
    ),
    Mutant(
        "skip-illegal-refund",
        "|d|=3 no two similar: refund 3f to the creator -- no refund",
        "Task.vy",
        "            self._refund(taskId, self.tasks[taskId].balance)\n            for r: uint256 in range(ROUNDS):\n",
        "            for r: uint256 in range(ROUNDS):\n",
    ),
    Mutant(
        "cancel-keeps-escrow",
        "cancel: what is left of the escrow goes back to the creator -- kept by Task",
        "Task.vy",
        "    if remaining > 0:\n        self._refund(taskId, remaining)\n",
        "",
    ),
    Mutant(
        "slash-keeps-fee",
        "slash: the cheater's fee goes back to the creator -- kept in the escrow",
        "Task.vy",
        "    self._refund(taskId, self.taskFees[taskId])\n    if self.nodeTasks[nodeAddress] == taskId:\n",
        "    if self.nodeTasks[nodeAddress] == taskId:\n",
    ),
    Mutant(
        "slash-returns-stake",
        "slash: the cheater's stake goes to the Node owner -- back to the cheater",
        "Node.vy",
        "    assert extcall self.token.transfer(ownable.owner, STAKE_AMOUNT), \"Token transfer failed\"\n",
        "    self._return_stake(nodeAddress)\n",
    ),
    Mutant(
        "late-cheater-paid",
        "|d|=3 after success: a d2 not similar to d0 is slashed -- paid instead",
        "Task.vy",
        "            else:\n                self._slash(taskId, r2)\n",
        "            else:\n                self._pay(taskId, r2)\n",
    ),
    Mutant(
        "late-cheater-freed",
        "|d|=3 after success: a d2 not similar to d0 is slashed -- just freed",
        "Task.vy",
        "            else:\n                self._slash(taskId, r2)\n",
        "            else:\n                self._release(taskId, r2)\n",
    ),
    Mutant(
        "outvoted-d1-freed",
        "|d|=3 d0~d2: slash d1 -- d1 just freed",
        "Task.vy",
        "            self._pay(taskId, r2)\n            self._slash(taskId, r1)\n",
        "            self._pay(taskId, r2)\n            self._release(taskId, r1)\n",
    ),
    Mutant(
        "error-abort-no-slash",
        "two error reports: slash every node with a real commitment -- nobody slashed",
        "Task.vy",
        "                    if c != empty(bytes32) and c != ERROR_COMMITMENT:\n                        self._slash(taskId, r)\n",
        "                    if c != empty(bytes32) and c != ERROR_COMMITMENT:\n                        pass\n",
    ),
    Mutant(
        "free-wrong-node",
        "pay a node and free it -- frees the node of the next round",
        "Task.vy",
        "    assert extcall self.token.transfer(self.tasks[taskId].selectedNodes[round], fee), \"Token transfer failed\"\n    self._release(taskId, round)\n",
        "    assert extcall self.token.transfer(self.tasks[taskId].selectedNodes[round], fee), \"Token transfer failed\"\n    self._release(taskId, (round + 1) % ROUNDS)\n",
    ),
    Mutant(
        "current-fee",
        "deviation 3: pay with the task's own fee -- pays the current taskFeePerNode",
        "Task.vy",
        "    fee: uint256 = self.taskFees[taskId]\n",
        "    fee: uint256 = self.taskFeePerNode\n",
    ),
    Mutant(
        "cancel-frees-any",
        "deviation 2: cancel frees a selected node only if bound to this task -- frees it from any task (H-net)",
        "Task.vy",
        "    settled: uint256 = self.settledRounds[taskId]\n    for r: uint256 in range(ROUNDS):\n        if settled & (1 << r) == 0:\n            self._release(taskId, r)\n",
        "    for r: uint256 in range(ROUNDS):\n        n: address = selected[r]\n        if self.nodeTasks[n] != 0:\n            self.nodeTasks[n] = 0\n            extcall self.node.finishTask(n)\n",
    ),
    Mutant(
        "report-uploaded-twice",
        "deviation 4: a second reportResultsUploaded reverts -- allowed (paid twice)",
        "Task.vy",
        '    assert self.settledRounds[taskId] & (1 << round) == 0, "Results already reported"\n',
        "",
    ),
    Mutant(
        "threshold-inclusive",
        "similar: Hamming distance strictly below the threshold -- at most the threshold",
        "Task.vy",
        "        if self._popcount64(x ^ y) >= threshold:\n",
        "        if self._popcount64(x ^ y) > threshold:\n",
    ),
    Mutant(
        "cancel-at-deadline",
        "cancel: only when block.timestamp > timeout -- also at the deadline",
        "Task.vy",
        "    assert block.timestamp > self.tasks[taskId].timeout,",
        "    assert block.timestamp >= self.tasks[taskId].timeout,",
    ),
    Mutant(
        "nonce-reuse",
        "commit: a nonce already used in the task (or zero) reverts -- accepted",
        "Task.vy",
        '    assert nonce not in self.tasks[taskId].nonces, "Nonce already used"\n',
        "",
    ),
    Mutant(
        "ready-with-two-errors",
        "CommitmentsReady needs at most one error marker -- emitted with two",
        "Task.vy",
        "    if errors <= 1:\n",
        "    if errors <= 2:\n",
    ),
    Mutant(
        "pending-quit-keeps-stake",
        "Node.finishTask of a PENDING_QUIT node returns its stake -- keeps it",
        "Node.vy",
        "        self._remove_node(nodeAddress)\n        self._return_stake(nodeAddress)\n",
        "        self._remove_node(nodeAddress)\n",
    ),
)


def apply(mutant: Mutant, folder: Path) -> None:
    """Apply `mutant` to the copy of the contracts in `folder`; exactly one match."""
    path = folder / mutant.file
    if not path.is_file():
        raise MutantError(f"{mutant.name}: no {mutant.file} in {folder}")
    text = path.read_text()
    count = text.count(mutant.find)
    if count != 1:
        raise MutantError(
            f"{mutant.name}: its pattern occurs {count} times in {mutant.file} (must be exactly once); "
            f"has the contract changed? pattern:\n{mutant.find}"
        )
    path.write_text(text.replace(mutant.find, mutant.replace))


def copy_contracts(folder: Path) -> None:
    for source in sources_dir().glob("*.vy"):
        shutil.copy(source, folder / source.name)


def _compile(folder: Path, label: str) -> None:
    for name in ("CNX", "Node", "Task"):
        try:
            compile_contract(name, folder)
        except Exception as exc:
            raise MutantError(f"{label}: {name}.vy does not compile: {exc}") from exc


@dataclass(frozen=True)
class Outcome:
    verdict: str  # caught, missed, error, timeout
    seconds: float
    detail: str


_FAILED = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$", re.MULTILINE)


def run_tests(folder: Path | None, timeout: int, seed: int | None = None) -> Outcome:
    env = dict(os.environ, HYPOTHESIS_PROFILE=os.environ.get("MUTATION_PROFILE", "mutation"), COLUMNS="400")  # untruncated summary lines
    env.pop("HYPOTHESIS_SEED", None)
    if seed is not None:
        env["HYPOTHESIS_SEED"] = str(seed)
    if folder is not None:
        env["HYDROGEN_CONTRACTS_DIR"] = str(folder)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TEST_FILES]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome("timeout", time.perf_counter() - started, f"no verdict within {timeout} s")
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    failures = _FAILED.findall(output)
    if done.returncode == 0:
        return Outcome("missed", seconds, "all property tests passed")
    if done.returncode == 1 and failures and all(kind == "FAILED" for kind, _, _ in failures):
        _, test, message = failures[0]
        if not message:
            first_error = re.search(r"^E\s+(\w+(?:Error|Exception)\b.*)$", output, re.MULTILINE)
            message = first_error.group(1) if first_error else ""
        return Outcome("caught", seconds, f"{test.rsplit('::', 1)[-1]}: {message.strip()}")
    tail = "\n".join(output.strip().splitlines()[-15:])
    return Outcome("error", seconds, f"pytest exit code {done.returncode}:\n{tail}")


def _table(rows: list[tuple[Mutant, Outcome]]) -> str:
    width = max(len(m.name) for m, _ in rows)
    lines = [f"{'mutant':<{width}}  {'file':<7}  {'result':<7}  {'seconds':>7}  caught by / detail", "-" * (width + 80)]
    for mutant, outcome in rows:
        detail = outcome.detail.splitlines()[0] if outcome.detail else ""
        if len(detail) > 110:
            detail = detail[:107] + "..."
        lines.append(f"{mutant.name:<{width}}  {mutant.file:<7}  {outcome.verdict:<7}  {outcome.seconds:7.1f}  {detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this mutant (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help=f"seconds per pytest run (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed of every run (default: the profile's fixed seed)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not first check that the unmutated contracts pass")
    args = parser.parse_args(argv)

    if args.list:
        for mutant in MUTANTS:
            print(f"{mutant.name:<26} {mutant.file:<8} {mutant.rule}")
        return 0
    unknown = set(args.only) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))}; see --list")
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]

    with tempfile.TemporaryDirectory(prefix="hydrogen-mutants-") as tmp:
        base = Path(tmp)
        # Apply and compile every mutant before running anything: a stale pattern or a
        # mutant that does not compile is an error of the check, not a missed mutant.
        folders: dict[str, Path] = {}
        try:
            for mutant in chosen:
                folder = base / mutant.name
                folder.mkdir()
                copy_contracts(folder)
                apply(mutant, folder)
                _compile(folder, mutant.name)
                folders[mutant.name] = folder
        except MutantError as exc:
            print(f"mutation check broken: {exc}", file=sys.stderr)
            return 2

        started = time.perf_counter()
        if not args.skip_baseline:
            original = base / "original"
            original.mkdir()
            copy_contracts(original)
            print("baseline: the unmutated contracts under the mutation profile ...", flush=True)
            outcome = run_tests(original, args.timeout, args.seed)
            print(f"baseline: {'passed' if outcome.verdict == 'missed' else outcome.verdict} in {outcome.seconds:.1f} s", flush=True)
            if outcome.verdict != "missed":
                print(f"the property tests fail on the unmutated contracts, so no mutant can be judged:\n{outcome.detail}", file=sys.stderr)
                return 2

        rows: list[tuple[Mutant, Outcome]] = []
        for index, mutant in enumerate(chosen, 1):
            print(f"[{index}/{len(chosen)}] {mutant.name}: {mutant.rule} ...", flush=True)
            outcome = run_tests(folders[mutant.name], args.timeout, args.seed)
            print(f"    {outcome.verdict} in {outcome.seconds:.1f} s: {outcome.detail.splitlines()[0] if outcome.detail else ''}", flush=True)
            if outcome.verdict == "error":
                print(outcome.detail, flush=True)
            rows.append((mutant, outcome))

    caught = sum(1 for _, o in rows if o.verdict == "caught")
    print()
    print(_table(rows))
    print()
    print(f"{caught} of {len(rows)} mutants caught ({time.perf_counter() - started:.0f} s in all)")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
