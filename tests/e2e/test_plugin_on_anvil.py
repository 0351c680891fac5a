"""The plugin against a real JSON-RPC node: `--hydrogen-rpc-url` pointed at anvil."""

from __future__ import annotations

import pytest

from hydrogen_harness.sandbox.anvil import AnvilProcess
from tests.e2e.test_plugin import USER_TESTS
from tests.user_runs import lean

pytest_plugins = ["pytester"]


@pytest.mark.slow
def test_a_user_suite_runs_against_anvil(pytester: pytest.Pytester, anvil: AnvilProcess) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess(*lean("-p", "no:cacheprovider", "--hydrogen-rpc-url", anvil.url))
    result.assert_outcomes(passed=4)
