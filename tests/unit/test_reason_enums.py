"""The protocol's reason enums hold the contracts' strings verbatim: a member the
contracts no longer say would make the harness's comparisons silently false."""

from __future__ import annotations

import re

import pytest

from hydrogen_harness.chain.compiler import contract_source
from hydrogen_harness.protocol.events import AbortReason
from hydrogen_harness.protocol.reverts import RevertReason


def _sources() -> str:
    return "\n".join(contract_source(name) for name in ("CNX", "Node", "Task"))


@pytest.mark.parametrize("reason", list(RevertReason), ids=lambda r: r.name)
def test_each_revert_reason_is_a_contract_assert(reason: RevertReason) -> None:
    assert re.search(rf'assert [^\n]*, "{re.escape(reason)}"', _sources()), f"no contract asserts with {reason.value!r}"


@pytest.mark.parametrize("reason", list(AbortReason), ids=lambda r: r.name)
def test_each_abort_reason_is_logged_by_task(reason: AbortReason) -> None:
    assert f'log TaskAborted(taskId=taskId, reason="{reason}")' in contract_source("Task")
