"""The application's persisted progress: one JSON file, written atomically.

Before `createTask` is sent, its signed bytes and hash are saved; a restarted
application looks the hash up instead of signing a new transaction, so it never
creates (and pays for) the same task twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["Job", "JobPhase", "ProgressStore"]


class JobPhase(str, Enum):
    NEW = "new"  # accepted, nothing sent yet
    CREATING = "creating"  # createTask signed and saved, maybe sent
    CREATED = "created"  # task id known, args not yet on the Relay
    UPLOADED = "uploaded"  # args on the Relay, waiting for the outcome
    SUCCEEDED = "succeeded"  # TaskSuccess seen, images being downloaded
    COMPLETED = "completed"  # every image downloaded
    ABORTED = "aborted"  # TaskAborted seen (or cancelled)
    FAILED = "failed"  # createTask reverted

    @property
    def finished(self) -> bool:
        return self in (JobPhase.COMPLETED, JobPhase.ABORTED, JobPhase.FAILED)


@dataclass
class Job:
    key: str
    args_json: str
    task_hash: str
    phase: JobPhase = JobPhase.NEW
    create_tx_hash: str | None = None
    create_tx_raw: str | None = None
    task_id: int | None = None
    selected_nodes: list[str] = field(default_factory=list)
    created_block: int | None = None
    deadline: int | None = None
    result: str | None = None
    result_node: str | None = None
    abort_reason: str | None = None
    succeeded_before_abort: bool = False
    error: str | None = None
    images_downloaded: int = 0
    tx_hashes: list[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        return len(bytes.fromhex(self.result.removeprefix("0x"))) // 8 if self.result else 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        data = dict(data)
        data["phase"] = JobPhase(data["phase"])
        return cls(**data)


class ProgressStore:
    """Jobs and the event cursor; kept in memory, and in a JSON file when given one."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.jobs: dict[str, Job] = {}
        self.cursor: int | None = None
        self.images: dict[str, list[bytes]] = {}
        if self.path is not None and self.path.exists():
            self._load()

    def _images_dir(self) -> Path | None:
        return None if self.path is None else self.path.with_suffix(".images")

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except ValueError as exc:
            raise ValueError(f"application progress file {self.path} is not valid JSON: {exc}") from exc
        self.cursor = data.get("cursor")
        self.jobs = {key: Job.from_json(job) for key, job in data.get("jobs", {}).items()}
        folder = self._images_dir()
        for key, job in self.jobs.items():
            if folder is not None and job.images_downloaded:
                self.images[key] = [(folder / key / f"{i}.png").read_bytes() for i in range(job.images_downloaded)]

    def save(self) -> None:
        if self.path is None:
            return
        payload = {"cursor": self.cursor, "jobs": {key: job.to_json() for key, job in self.jobs.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def add_image(self, key: str, image: bytes) -> None:
        images = self.images.setdefault(key, [])
        folder = self._images_dir()
        if folder is not None:
            (folder / key).mkdir(parents=True, exist_ok=True)
            (folder / key / f"{len(images)}.png").write_bytes(image)
        images.append(image)
