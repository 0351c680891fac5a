"""The fake Relay: a service core and the HTTP app that serves it.

    service = RelayService(ContractChainSource(deployment.task), MemoryStorage(), clock=chain.now)
    http = in_process_client(create_app(service))
"""

from hydrogen_harness.fakes.relay.app import create_app
from hydrogen_harness.chain.event_feed import ChainSource, ContractChainSource
from hydrogen_harness.fakes.relay.errors import RelayInternalError, RelayServiceError, RelayValidationError
from hydrogen_harness.fakes.relay.follower import ChainFollower, Rollback
from hydrogen_harness.fakes.relay.images import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGES,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_DECODED_BYTES,
)
from hydrogen_harness.fakes.relay.json_limits import MAX_JSON_BODY_BYTES
from hydrogen_harness.fakes.relay.records import RowKind, SelectedNodeRecord, TaskRecord, task_json
from hydrogen_harness.fakes.relay.service import SIGNATURE_WINDOW, RelayService
from hydrogen_harness.fakes.relay.sqlite_storage import RelayDatabaseDamaged, RelayDatabaseError, SqliteStorage
from hydrogen_harness.fakes.relay.storage import MemoryStorage, Storage
from hydrogen_harness.fakes.relay.transport import FaultInjector, RunningRelay, in_process_client, serve_relay

__all__ = [
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_JSON_BODY_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_DECODED_BYTES",
    "SIGNATURE_WINDOW",
    "ChainFollower",
    "ChainSource",
    "ContractChainSource",
    "FaultInjector",
    "MemoryStorage",
    "RelayDatabaseDamaged",
    "RelayDatabaseError",
    "RelayInternalError",
    "RelayService",
    "RelayServiceError",
    "RelayValidationError",
    "Rollback",
    "RowKind",
    "RunningRelay",
    "SelectedNodeRecord",
    "SqliteStorage",
    "Storage",
    "TaskRecord",
    "create_app",
    "in_process_client",
    "serve_relay",
    "task_json",
]
