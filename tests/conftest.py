"""Shared fixtures of the project's own tests (on top of the plugin's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.compiler import cache_dir
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.sandbox.anvil import AnvilProcess, find_anvil, start_anvil


# Read before pytester points HOME at a temporary folder: a user's suite run by pytester
# then finds the contracts compiled, as it does on the user's own machine after the
# first run, instead of compiling all three again in every session (3 s of CPU each).
_CONTRACT_CACHE = cache_dir()


@pytest.fixture(autouse=True)
def _user_sessions_share_the_contract_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "pytester" in request.fixturenames:
        monkeypatch.setenv("HYDROGEN_HARNESS_CACHE", str(_CONTRACT_CACHE))


@pytest.fixture
def contracts(hydrogen_contracts: Deployment) -> Deployment:
    """Short name for the isolated deployment."""
    return hydrogen_contracts


@pytest.fixture(scope="session")
def revm_deployment(request: pytest.FixtureRequest) -> Deployment:
    """CNX, Node and Task on revm (seeded by --hydrogen-seed), one per worker, for the
    tests whose subject is not the chain under them (tests/contracts, tests/e2e). revm
    gives what eth-tester gives: tests/e2e/test_backends_agree.py."""
    return deploy(Chain.revm(seed=request.config.getoption("--hydrogen-seed")))


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[AnvilProcess]:
    """A fresh anvil on a free loopback port, stopped after the test (skips without anvil)."""
    binary = find_anvil()
    if binary is None:
        pytest.skip("anvil is not installed (.ci/run installs it from npm: @foundry-rs/anvil-linux-amd64)")
    process = start_anvil(binary, tmp_path / "anvil.log")
    try:
        yield process
    finally:
        process.stop()
