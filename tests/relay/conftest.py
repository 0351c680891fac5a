"""Fixtures of the Relay tests: one chain world per session, a fresh Relay per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hydrogen_harness.fakes.relay import MemoryStorage, RelayService, create_app, in_process_client
from tests.relay.wire import Wire
from tests.relay.world import RelayWorld, build_world


@pytest.fixture(scope="session")
def world() -> RelayWorld:
    return build_world()


@pytest.fixture
def chain_isolated(world: RelayWorld) -> Iterator[RelayWorld]:
    """The world, for a test that sends transactions or moves time: all undone after."""
    clock_before = world.clock.now
    try:
        with world.chain.isolation():
            yield world
    finally:
        world.clock.now = clock_before


@pytest.fixture
def relay(world: RelayWorld) -> RelayService:
    """A fresh Relay (in memory) that has seen nothing yet but the chain."""
    return RelayService(world.history, MemoryStorage(), clock=world.clock)


@pytest.fixture
def http(relay: RelayService) -> Iterator[httpx.Client]:
    with in_process_client(create_app(relay)) as client:
        yield client


@pytest.fixture
def wire(http: httpx.Client, world: RelayWorld) -> Wire:
    return Wire(http, world.clock)
