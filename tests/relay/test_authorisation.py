"""Who may call what, on every endpoint: the creator, each selected node, the
result node, another node, a stranger; forged, malformed, stale and future
signatures (60 s either way is accepted, 61 s is not)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.protocol.signing import sign_request
from tests.relay.wire import MALFORMED, Wire, assert_refused, malformed
from tests.relay.world import RelayWorld

ROLES = ("creator", "node0", "node1", "node2", "other node", "stranger")


@dataclass(frozen=True)
class Endpoint:
    name: str
    allowed: frozenset[str]
    prepare: Callable[[Wire, RelayWorld], None]
    call: Callable[..., httpx.Response]
    params: Callable[[RelayWorld], dict[str, Any]]  # what a legitimate caller signs


def _nothing(wire: Wire, world: RelayWorld) -> None:
    pass


def _args_uploaded(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    assert wire.post_args(world.creator, task.task_id, task.args).status_code == 200


def _images_uploaded(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    assert wire.upload(task.result_node, task.task_id, task.images).status_code == 200


# The successful task's result node is its round-0 node (the first to disclose).
ENDPOINTS = {
    "upload args": Endpoint(
        "upload args",
        frozenset({"creator"}),
        _nothing,
        lambda wire, world, account, **kw: wire.post_args(account, world.succeeded.task_id, world.succeeded.args, **kw),
        lambda world: {"task_args": world.succeeded.args, "task_id": world.succeeded.task_id},
    ),
    "get task": Endpoint(
        "get task",
        frozenset({"creator", "node0", "node1", "node2"}),
        _args_uploaded,
        lambda wire, world, account, **kw: wire.get_task(account, world.succeeded.task_id, **kw),
        lambda world: {"task_id": world.succeeded.task_id},
    ),
    "upload results": Endpoint(
        "upload results",
        frozenset({"node0"}),
        _nothing,
        lambda wire, world, account, **kw: wire.upload(account, world.succeeded.task_id, world.succeeded.images, **kw),
        lambda world: {"task_id": world.succeeded.task_id},
    ),
    "get result": Endpoint(
        "get result",
        frozenset({"creator"}),
        _images_uploaded,
        lambda wire, world, account, **kw: wire.get_result(account, world.succeeded.task_id, "0", **kw),
        lambda world: {"image_num": "0", "task_id": world.succeeded.task_id},
    ),
}


def _account(world: RelayWorld, role: str) -> LocalAccount:
    task = world.succeeded
    accounts = {
        "creator": world.creator,
        "node0": task.nodes[0],
        "node1": task.nodes[1],
        "node2": task.nodes[2],
        "other node": world.other_node(task),
        "stranger": world.stranger,
    }
    return accounts[role]


def _legit(endpoint: Endpoint, world: RelayWorld) -> LocalAccount:
    (role,) = endpoint.allowed if len(endpoint.allowed) == 1 else ("creator",)
    return _account(world, role)


def test_the_result_node_is_round_0(world: RelayWorld) -> None:
    assert world.succeeded.result_node is world.succeeded.nodes[0]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_roles(wire: Wire, world: RelayWorld, name: str, role: str) -> None:
    endpoint = ENDPOINTS[name]
    endpoint.prepare(wire, world)
    response = endpoint.call(wire, world, _account(world, role))
    if role in endpoint.allowed:
        assert response.status_code == 200, response.text
    else:
        assert_refused(response, "signature", "Signer not allowed")


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_signature_over_other_params_is_not_the_signers(wire: Wire, world: RelayWorld, name: str) -> None:
    # A well-formed signature recovers *some* address; over other data it is not
    # the signer's, so the request fails the signer check, as on the real Relay.
    endpoint = ENDPOINTS[name]
    endpoint.prepare(wire, world)
    forged = {**endpoint.params(world), "task_id": world.created.task_id}
    response = endpoint.call(wire, world, _legit(endpoint, world), signed_params=forged)
    assert_refused(response, "signature", "Signer not allowed")


@pytest.mark.parametrize("kind", MALFORMED)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_malformed_signatures(wire: Wire, world: RelayWorld, name: str, kind: str) -> None:
    endpoint = ENDPOINTS[name]
    endpoint.prepare(wire, world)
    signer = _legit(endpoint, world)
    signature = malformed(sign_request(endpoint.params(world), world.clock(), signer), kind)
    assert_refused(endpoint.call(wire, world, signer, signature=signature), "signature", "Invalid signature")


@pytest.mark.parametrize(("offset", "accepted"), [(-61, False), (-60, True), (60, True), (61, False)])
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_timestamp_window(wire: Wire, world: RelayWorld, name: str, offset: int, accepted: bool) -> None:
    endpoint = ENDPOINTS[name]
    endpoint.prepare(wire, world)
    response = endpoint.call(wire, world, _legit(endpoint, world), timestamp=world.clock() + offset)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert_refused(response, "signature", "Invalid signature")
