"""The plugin against a real JSON-RPC node: `--hydrogen-rpc-url` pointed at anvil."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.sandbox_anvil import AnvilProcess, find_anvil, start_anvil
from tests.e2e.test_plugin import USER_TESTS

pytest_plugins = ["pytester"]


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[AnvilProcess]:
    binary = find_anvil()
    if binary is None:
        pytest.skip("anvil is not installed (.ci/run installs it from npm: @foundry-rs/anvil-linux-amd64)")
    process = start_anvil(binary, tmp_path / "anvil.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.slow
def test_a_user_suite_runs_against_anvil(pytester: pytest.Pytester, anvil: AnvilProcess) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hydrogen-rpc-url", anvil.url)
    result.assert_outcomes(passed=4)
