"""A whole simulated network: chain, contracts, Relay, nodes and applications.

`Network` wires the pieces and drives them in deterministic steps: each `step()`
reads the new Task events once, hands them to every node, then lets each node
and each application act at most once. `run_until` and `settle` step until a
condition holds or a bound is hit, and then say who is stuck on what. Timeouts
are reached by advancing the chain clock, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from hydrogen_harness.fakes.behaviour import Behaviour
from hydrogen_harness.fakes.diffusion import DeterministicGenerator, ImageGenerator
from hydrogen_harness.fakes.node import SimulatedNode
from hydrogen_harness.chain.event_feed import ContractChainSource, EventFeed
from hydrogen_harness.protocol.actions import ActionCursor, Actor
from hydrogen_harness.fakes.relay import MemoryStorage, RelayService, create_app
from hydrogen_harness.fakes.relay.transport import FaultInjector
from hydrogen_harness.client.app import AllowanceMode, Application, WatchMode
from hydrogen_harness.client.store import ProgressStore
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.events import TaskEvent
from hydrogen_harness.chain.ledger import Ledger
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.client.relay import RelayClient, RetryPolicy, task_id_in_path

__all__ = ["Network", "SimulationStuck", "TimelineEntry"]

E = TypeVar("E", bound=TaskEvent)


class SimulationStuck(RuntimeError):
    """`run_until`/`settle` hit their step bound; the message says who waits on what."""


@dataclass(frozen=True)
class TimelineEntry:
    step: int
    block: int
    time: int
    actor: str
    what: str
    task_id: int | None = None


def _no_sleep(_: float) -> None:
    """Retries in a simulation happen on the next step, never by sleeping."""


class Network:
    """See the module docstring. Build with `Network(seed=..., nodes=[...])`."""

    def __init__(
        self,
        seed: int = 0,
        nodes: int | Sequence[Behaviour | str] = 3,
        *,
        chain: Chain | None = None,
        deployment: Deployment | None = None,
        generator: ImageGenerator | None = None,
        relay: RelayService | None = None,
    ) -> None:
        self.seed = seed
        self.chain = chain or Chain.in_memory(seed=seed)
        self.contracts = deployment or deploy(self.chain)
        self.generator = generator or DeterministicGenerator()
        self.timeline: list[TimelineEntry] = []
        self.events: list[TaskEvent] = []
        self._action_cursors: dict[str, ActionCursor] = {}
        self.steps = 0
        start = self.chain.block_number + 1
        self._feed = EventFeed(ContractChainSource(self.contracts.task), start)
        self.ledger = Ledger(self.contracts, from_block=start)

        self.relay = relay or RelayService(ContractChainSource(self.contracts.task), MemoryStorage(), clock=self.chain.now)
        self.relay_app = create_app(self.relay)
        self.faults = FaultInjector(self.relay_app)
        self.nodes: list[SimulatedNode] = []
        self.apps: list[Application] = []
        behaviours = ["honest"] * nodes if isinstance(nodes, int) else list(nodes)
        for behaviour in behaviours:
            self.add_node(behaviour)

    # ------------------------------------------------------------ actors

    def relay_client(self, actor: str) -> RelayClient:
        """A Relay client that reaches the in-process Relay through the fault injector."""
        http = self.faults.client(event_hooks={"response": [self._relay_hook(actor)]})
        return RelayClient(http, clock=self.chain.now, retry=RetryPolicy(retry_transient=False), sleep=_no_sleep)

    def _relay_hook(self, actor: str) -> Callable[[httpx.Response], None]:
        def record(response: httpx.Response) -> None:
            request = response.request
            task_id = task_id_in_path(request.url.path)
            self._record(actor, f"relay {request.method} {request.url.path} -> {response.status_code}", task_id)

        return record

    def add_node(self, behaviour: Behaviour | str = "honest", join: bool = True) -> SimulatedNode:
        parsed = behaviour if isinstance(behaviour, Behaviour) else Behaviour.parse(behaviour)
        name = f"node{len(self.nodes) + 1}"
        account = self.contracts.new_node(join=False)
        node = SimulatedNode(
            name, self.contracts, account, self.relay_client(name), parsed, self.generator, seed=self.seed
        )
        self.nodes.append(node)
        if join:
            node.join()
        self._flush_actions()
        return node

    def add_app(
        self,
        cnx: int = 1_000 * CNX,
        eth: int = 10 * 10**18,
        *,
        allowance: AllowanceMode | str = AllowanceMode.EXACT,
        watch: WatchMode | str = WatchMode.EVENTS,
        store: ProgressStore | None = None,
        **options: Any,
    ) -> Application:
        name = f"app{len(self.apps) + 1}"
        account = self.contracts.new_app(cnx=cnx, eth=eth)
        app = Application(
            self.contracts,
            account,
            self.relay_client(name),
            store=store,
            name=name,
            allowance=AllowanceMode(allowance),
            watch=WatchMode(watch),
            **options,
        )
        self.apps.append(app)
        return app

    def node(self, address: str) -> SimulatedNode:
        for node in self.nodes:
            if node.address.lower() == address.lower():
                return node
        raise KeyError(f"no simulated node has address {address}")

    # ------------------------------------------------------------ stepping

    def _record(self, actor: str, what: str, task_id: int | None = None) -> None:
        self.timeline.append(TimelineEntry(self.steps, self.chain.block_number, self.chain.now(), actor, what, task_id))

    def _flush_actions(self) -> None:
        """Copy what actors did (including outside `step`, e.g. `app.submit`) to the timeline."""
        actors: list[Actor] = [*self.nodes, *self.apps]
        for actor in actors:
            cursor = self._action_cursors.setdefault(actor.name, ActionCursor(actor))
            for action in cursor.new():
                self._record(actor.name, action.what, action.task_id)

    def _new_events(self) -> list[TaskEvent]:
        return self._feed.poll()

    def _publish(self) -> list[TaskEvent]:
        events = self._new_events()
        self.events.extend(events)
        for event in events:
            fields = {k: v for k, v in vars(event).items() if k not in ("block_number", "log_index", "tx_hash", "task_id")}
            shown = ", ".join(f"{k}={v.hex() if isinstance(v, bytes) else v}" for k, v in fields.items())
            self.timeline.append(
                TimelineEntry(self.steps, event.block_number, self.chain.now(), "chain", f"{type(event).__name__}({shown})", event.task_id)
            )
        for node in self.nodes:
            node.observe(events)
        return events

    def step(self) -> bool:
        """Let every actor act at most once; True if anything happened."""
        self.steps += 1
        moved = bool(self._publish())
        self._flush_actions()
        # Apps first: args uploaded in this step can be fetched by nodes in this step.
        for app in self.apps:
            moved |= app.step()
            self._flush_actions()
        for node in self.nodes:
            moved |= node.step()
            self._flush_actions()
        moved |= bool(self._publish())
        return moved

    def busy(self) -> bool:
        """True while an application has an unfinished job or a node has work it can do."""
        if any(app.pending() for app in self.apps):
            return True
        return any(node.active() and not node.crashed and not node.behaviour.offline for node in self.nodes)

    def stuck_report(self) -> str:
        lines = [f"{node.name} ({node.behaviour}): {node.waiting_on()}" for node in self.nodes]
        for app in self.apps:
            jobs = ", ".join(f"task {j.task_id} {j.phase.value}" for j in app.pending()) or "idle"
            lines.append(f"{app.name}: {jobs}")
        return "; ".join(lines)

    def run_until(self, predicate: Callable[[], bool], max_steps: int = 500) -> int:
        """Step until `predicate()` holds; returns the steps taken."""
        for taken in range(max_steps + 1):
            if predicate():
                return taken
            self.step()
        raise SimulationStuck(f"condition not reached after {max_steps} steps: {self.stuck_report()}")

    def wait_for_event(self, kind: type[E], task_id: int | None = None, max_steps: int = 500) -> E:
        """Step until an event of `kind` (for `task_id`, if given) has been seen; return it."""

        def found() -> E | None:
            for event in self.events:
                if isinstance(event, kind) and (task_id is None or event.task_id == task_id):
                    return event
            return None

        self.run_until(lambda: found() is not None, max_steps=max_steps)
        event = found()
        assert event is not None
        return event

    def settle(self, max_steps: int = 2_000, advance_deadlines: bool = True, patience: int = 25) -> int:
        """Step until nothing is left to do. When no actor has moved for `patience`
        steps in a row (crashed or offline nodes, a Relay that stays down) but work
        is pending, move the clock past the next deadline so that cancellation can
        resolve it (unless `advance_deadlines` is off). Returns the steps taken."""
        idle = 0
        for taken in range(max_steps):
            moved = self.step()
            if not self.busy() and not moved:
                return taken
            idle = 0 if moved else idle + 1
            if idle >= patience and advance_deadlines:
                deadline = self._next_deadline()
                if deadline is None:
                    raise SimulationStuck(f"nothing moves and no deadline is pending: {self.stuck_report()}")
                if deadline >= self.chain.now():
                    self.advance(deadline - self.chain.now() + 1)
                idle = 0
        raise SimulationStuck(f"not settled after {max_steps} steps: {self.stuck_report()}")

    def _next_deadline(self) -> int | None:
        """The earliest deadline still ahead that an actor who can act is waiting for.

        An offline or crashed node keeps the tasks it was given (it never acts on
        them), and a deadline already past cannot be the one to move the clock to.
        """
        now = self.chain.now()
        deadlines = [job.deadline for app in self.apps for job in app.pending() if job.deadline is not None]
        deadlines += [
            task.deadline for node in self.nodes if not (node.crashed or node.behaviour.offline) for task in node.active()
        ]
        ahead = [d for d in deadlines if d >= now]
        return min(ahead) if ahead else None

    def advance(self, seconds: int) -> int:
        """Move the chain clock (and so the Relay's) forward by `seconds`."""
        now = self.chain.advance(seconds)
        self._record("clock", f"advance {seconds} s")
        return now
