"""A chain with tasks in every state the Relay cares about, built once per session.

Six nodes join; an application creates three tasks, driven with the real
contracts:

- `aborted`: all three nodes report an error, so `TaskAborted("Task error reported")`;
- `succeeded`: the nodes commit and disclose the perceptual hashes of generated
  PNGs, so `TaskSuccess(result, resultNode)`; the result node has not reported
  the upload yet, so it stays bound to the task (which a late cancel can abort);
- `created`: only `TaskCreated`, nobody has acted.

The Relay side is not touched here: each test builds its own Relay, which
learns all of this from the logs, and uploads what the test needs.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
from eth_account.signers.local import LocalAccount
from PIL import Image

from hydrogen_harness.fakes.relay import ContractChainSource
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.protocol.events import TaskEvent
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.phash import phash, result_bytes
from hydrogen_harness.protocol.constants import CNX, commitment_of
from hydrogen_harness.protocol.task_args import task_hash

__all__ = ["Clock", "KnownHistory", "RelayWorld", "WorldTask", "build_world", "gradient_png", "task_args_json"]


def gradient_png(seed: int, size: int = 64) -> bytes:
    """A small PNG: a gradient plus a seeded low-frequency pattern, so that images
    of different seeds have clearly different perceptual hashes."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size)
    gradient = np.add.outer(ramp * rng.uniform(-1, 1), ramp * rng.uniform(-1, 1))
    coarse = rng.uniform(0, 1, (4, 4))
    pattern = np.kron(coarse, np.ones((size // 4, size // 4)))
    grey = (gradient - gradient.min()) / max(np.ptp(gradient), 1e-9) * 0.5 + pattern * 0.5
    rgb = np.stack([grey, np.roll(grey, seed % size, axis=0), grey[::-1]], axis=-1)
    pixels = (rgb * 255).clip(0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(out, format="PNG")
    return out.getvalue()


def task_args_json(prompt: str, num_images: int) -> str:
    return json.dumps(
        {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": prompt, "task_config": {"num_images": num_images}}
    )


class KnownHistory:
    """A `ChainSource` that answers from a recording for blocks up to `known_head`.

    eth-tester's eth_getLogs re-reads every block and receipt, costing ~0.2 s for
    this world; each test's fresh Relay would pay that. The world's blocks never
    change (tests revert what they add), so they are read once; later blocks
    still come from the chain.
    """

    def __init__(self, source: ContractChainSource) -> None:
        self.source = source
        self.known_head = source.head()
        self.known = source.events(0, self.known_head)

    def head(self) -> int:
        return self.source.head()

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        recorded = [e for e in self.known if from_block <= e.block_number <= min(to_block, self.known_head)]
        later = self.source.events(max(from_block, self.known_head + 1), to_block)
        return recorded + later

    def block_hash(self, number: int) -> bytes | None:
        return self.source.block_hash(number)


@dataclass
class Clock:
    """The time both the Relay and the clients read: fixed unless a test moves it."""

    now: int

    def __call__(self) -> int:
        return self.now


@dataclass(frozen=True)
class WorldTask:
    task_id: int
    args: str
    nodes: tuple[LocalAccount, LocalAccount, LocalAccount]  # by round
    images: tuple[bytes, ...] = ()
    result_node: LocalAccount | None = None

    @property
    def result(self) -> bytes:
        return result_bytes(self.images)


@dataclass
class RelayWorld:
    chain: Chain
    deployment: Deployment
    creator: LocalAccount
    nodes: list[LocalAccount]
    stranger: LocalAccount
    clock: Clock
    history: KnownHistory
    aborted: WorldTask
    succeeded: WorldTask
    created: WorldTask
    by_address: dict[str, LocalAccount] = field(default_factory=dict)

    def other_node(self, task: WorldTask) -> LocalAccount:
        """A joined node that was not selected for `task`."""
        selected = {node.address for node in task.nodes}
        return next(node for node in self.nodes if node.address not in selected)


def _create(world_nodes: dict[str, LocalAccount], deployment: Deployment, creator: LocalAccount, args: str) -> WorldTask:
    created = deployment.task.create_task(creator, task_hash(args))
    nodes = tuple(world_nodes[address] for address in created.selected_nodes)
    return WorldTask(task_id=created.task_id, args=args, nodes=nodes)  # type: ignore[arg-type]


def build_world(seed: int = 11) -> RelayWorld:
    chain = Chain.in_memory(seed=seed)
    deployment = deploy(chain)
    nodes = [deployment.new_node() for _ in range(6)]
    by_address = {node.address: node for node in nodes}
    creator = deployment.new_app(cnx=1_000 * CNX, approve=1_000 * CNX)
    stranger = chain.new_account()
    task = deployment.task

    aborted = _create(by_address, deployment, creator, task_args_json("an aborted task", 1))
    for round_, node in enumerate(aborted.nodes):
        task.report_error(node, aborted.task_id, round_)

    images = (gradient_png(1), gradient_png(2), gradient_png(3))
    assert len({phash(image) for image in images}) == len(images), "test images need distinct hashes"
    succeeded = _create(by_address, deployment, creator, task_args_json("a successful task", len(images)))
    result = result_bytes(images)
    for round_, node in enumerate(succeeded.nodes):
        nonce = bytes([round_ + 1]) * 32
        task.submit_commitment(node, succeeded.task_id, round_, commitment_of(result, nonce), nonce)
    for round_, node in enumerate(succeeded.nodes):
        task.disclose(node, succeeded.task_id, round_, result)
    # The first disclosure is the result node (PROTOCOL.md 3).
    succeeded = WorldTask(
        task_id=succeeded.task_id, args=succeeded.args, nodes=succeeded.nodes, images=images, result_node=succeeded.nodes[0]
    )

    created = _create(by_address, deployment, creator, task_args_json("a task just created", 2))
    # eth-tester reverts a snapshot by re-executing its latest block, and a
    # createTask re-executed there selects other nodes (its blockhash-based
    # randomness differs) and fails validation. An empty block on top avoids it.
    chain.mine()
    return RelayWorld(
        chain=chain,
        deployment=deployment,
        creator=creator,
        nodes=nodes,
        stranger=stranger,
        clock=Clock(chain.now()),
        history=KnownHistory(ContractChainSource(deployment.task)),
        aborted=aborted,
        succeeded=succeeded,
        created=created,
        by_address=by_address,
    )
