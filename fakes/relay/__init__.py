"""The fake Relay: a service core and the HTTP app that serves it.

    service = RelayService(ContractChainSource(deployment.task), MemoryStorage(), clock=chain.now)
    http = in_process_client(create_app(service))
"""

from fakes.relay.app import create_app
from fakes.relay.chain_source import ChainSource, ContractChainSource
from fakes.relay.errors import RelayInternalError, RelayServiceError, RelayValidationError
from fakes.relay.follower import ChainFollower, Rollback
from fakes.relay.images import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGES,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_DECODED_BYTES,
)
from fakes.relay.json_limits import MAX_JSON_BODY_BYTES
from fakes.relay.records import RowKind, SelectedNodeRecord, TaskRecord, task_json
from fakes.relay.service import SIGNATURE_WINDOW, RelayService
from fakes.relay.sqlite_storage import RelayDatabaseDamaged, RelayDatabaseError, SqliteStorage
from fakes.relay.storage import MemoryStorage, Storage
from fakes.relay.transport import FaultInjector, RunningRelay, in_process_client, serve_relay

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
