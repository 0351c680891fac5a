from harness.contracts import Deployment
from harness.plugin import expect_revert
from harness.protocol import CNX


def test_create_task_needs_three_nodes(contracts: Deployment) -> None:
    contracts.new_node()
    app = contracts.new_app(approve=30 * CNX)
    with expect_revert("Not enough nodes"):
        contracts.task.create_task(app, b"\x01" * 32)


def test_isolation_reverts_previous_test(contracts: Deployment) -> None:
    assert contracts.node.total_nodes() == 0
