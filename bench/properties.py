"""Property-test speed: state-machine steps per second on each path the profiles
use (web3 + eth-tester in `make test`, revm in `make test-deep`), and for context
the floor of plain ERC20 transfers on each engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import keccak

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import deploy

__all__ = ["bench_properties"]

ROOT = Path(__file__).resolve().parent.parent
_SUMMARY = re.compile(r"(\d+) runs\b.*?(\d+) steps \(.*?\), ([\d.]+) s wall time, ([\d.]+) steps/s")


def _machine(backend: str, profile: str) -> dict[str, float]:
    print(f"properties: the settlement machine on {backend} ({profile} profile)...", file=sys.stderr, flush=True)
    env = {**os.environ, "HYDROGEN_BACKEND": backend, "HYPOTHESIS_PROFILE": profile, "HYPOTHESIS_SEED": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/properties/test_settlement_machine.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # ten times what the budget takes: only a hang reaches it
    )
    found = _SUMMARY.search(run.stdout)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"the settlement machine failed on {backend}: {run.stdout[-800:]}")
    runs, steps, seconds, rate = found.groups()
    return {"runs": int(runs), "steps": int(steps), "seconds": float(seconds), "steps_per_s": float(rate)}


def _transfers_per_s(chain: Chain, count: int) -> float:
    deployment = deploy(chain)
    owner = deployment.owner
    assert owner is not None
    receiver = chain.new_account(eth=0).address
    start = time.perf_counter()
    for _ in range(count):
        deployment.token.transfer(owner, receiver, 1)
    return count / (time.perf_counter() - start)


def _raw_revm_transfers_per_s(count: int) -> float:
    """pyrevm with nothing around it: the engine's own floor."""
    import pyrevm

    from hydrogen_harness.chain.compiler import compile_contract

    evm = pyrevm.EVM(spec_id="PRAGUE")
    owner = "0x" + "11" * 20
    evm.set_balance(owner, 10**24)
    token = evm.deploy(owner, compile_contract("CNX").bytecode)
    data = keccak(text="transfer(address,uint256)")[:4] + encode(["address", "uint256"], ["0x" + "22" * 20, 1])
    start = time.perf_counter()
    for _ in range(count):
        evm.message_call(owner, token, data)
    return count / (time.perf_counter() - start)


def bench_properties(quick: bool = False) -> dict[str, Any]:
    # The same fixed budget on both paths: the quick profile's 20 runs of up to 30 steps
    # (about 40 s on eth-tester). The mutation profile's 20,000 steps took 20 minutes
    # there, and past 30 on a busy machine.
    profile = "quick"
    web3_path = _machine("in-memory", profile)
    revm_path = _machine("revm", profile)
    ratio = revm_path["steps_per_s"] / web3_path["steps_per_s"]
    count = 200 if quick else 1000
    return {
        "machine_web3_eth_tester": web3_path,
        "machine_revm": revm_path,
        "erc20_transfers_per_s": {
            "web3_eth_tester": round(_transfers_per_s(Chain.in_memory(seed=9), count), 1),
            "bindings_on_revm": round(_transfers_per_s(Chain.revm(seed=9), count * 10), 1),
            "raw_pyrevm": round(_raw_revm_transfers_per_s(count * 20), 1),
            "titanoboa": "not measured: titanoboa is not a dependency of this project",
        },
        "target": {"what": "revm path steps/s >= 20 x the web3 + eth-tester path", "ratio": round(ratio, 1), "holds": ratio >= 20},
    }
