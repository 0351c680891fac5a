"""The Relay's database holds what apps uploaded: owner-only files (0600)."""

from __future__ import annotations

import os
from pathlib import Path

from hydrogen_harness.fakes.relay import SqliteStorage


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_database_and_its_companions_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite"
    storage = SqliteStorage(path)
    try:
        storage.put_images(1, [b"png"])  # a write, so the -wal and -shm files exist
        files = sorted(tmp_path.iterdir())
        assert [f.name for f in files] == ["relay.sqlite", "relay.sqlite-shm", "relay.sqlite-wal"]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        storage.close()


def test_an_existing_database_left_readable_is_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite"
    first = SqliteStorage(path)
    first.put_images(1, [b"png"])
    for f in tmp_path.iterdir():
        os.chmod(f, 0o644)  # as an earlier version wrote them
    second = SqliteStorage(path)
    try:
        assert {f.name: _mode(f) for f in tmp_path.iterdir()} == {f.name: 0o600 for f in tmp_path.iterdir()}
        assert second.get_image(1, 0) == b"png"
    finally:
        first.close()
        second.close()
