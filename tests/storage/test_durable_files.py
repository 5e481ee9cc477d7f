"""Renames and new directories are synced into their parents before anything names them.

A power cut cannot be staged in a test; what can be checked is that the directory holding a new name is
fsynced before the call returns. ``os.fsync`` is wrapped (still called: the files are really synced) to note
which paths were synced and in what order.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.blobs import BlobStore
from storage.durable_files import (
    create_synced,
    make_directories,
    replace_durably,
    sync_directories_under,
    sync_directory,
)
from storage.incoming_blobs import IncomingBlobs


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    paths: list[Path] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        paths.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    yield paths


def test_a_replaced_file_is_named_on_disk_before_the_call_returns(tmp_path: Path, synced: list[Path]) -> None:
    source, target = tmp_path / "a.partial", tmp_path / "inbox" / "a.env"
    target.parent.mkdir()
    source.write_bytes(b"sealed")
    replace_durably(source, target)
    assert target.read_bytes() == b"sealed" and not source.exists()
    assert synced == [target.parent]


def test_each_new_directory_is_synced_into_its_parent(tmp_path: Path, synced: list[Path]) -> None:
    (tmp_path / "blobs").mkdir()
    make_directories(tmp_path / "blobs" / "ab" / "cd")
    assert (tmp_path / "blobs" / "ab" / "cd").is_dir()
    assert synced == [tmp_path / "blobs", tmp_path / "blobs" / "ab"]
    synced.clear()
    make_directories(tmp_path / "blobs" / "ab" / "cd")  # already there: nothing to sync
    assert synced == []


def test_a_tree_is_synced_directory_by_directory(tmp_path: Path, synced: list[Path]) -> None:
    for leaf in ("blobs/ab", "blobs/cd", "envelopes/in"):
        (tmp_path / leaf).mkdir(parents=True)
    (tmp_path / "blobs" / "ab" / "file").write_bytes(b"x")
    assert sync_directories_under(tmp_path) == 6
    assert set(synced) == {tmp_path, tmp_path / "blobs", tmp_path / "blobs" / "ab", tmp_path / "blobs" / "cd",
                           tmp_path / "envelopes", tmp_path / "envelopes" / "in"}  # fmt: skip


def test_only_a_directory_can_be_synced_as_one(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        sync_directory(tmp_path / "file")


def test_a_published_blob_is_named_on_disk_before_its_row_can_be_committed(
    tmp_path: Path, synced: list[Path]
) -> None:
    store = BlobStore(tmp_path / "blobs")
    with store.stage_file(io.BytesIO(b"an IEP")) as staged:
        synced.clear()  # the bytes' own fsync; what follows is the naming
        blob = staged.publish()
    final = store.path_for(blob.sha256)
    assert final.read_bytes() == b"an IEP"
    assert synced[-1] == final.parent  # the rename, after any new shard directory was synced into its parent
    assert all(path.is_dir() for path in synced)


def test_a_new_secret_file_is_on_disk_with_its_name_before_the_call_returns(
    tmp_path: Path, synced: list[Path]
) -> None:
    # A rotated key is listed by a commit right after, and peers seal to it once it is published.
    key = tmp_path / "keys" / "encryption-k2.key"
    key.parent.mkdir()
    create_synced(key, b"secret")
    assert key.read_bytes() == b"secret" and key.stat().st_mode & 0o777 == 0o600
    assert synced == [key, key.parent]
    with pytest.raises(FileExistsError):  # never over an existing key
        create_synced(key, b"other")
    assert key.read_bytes() == b"secret"


def test_many_new_shards_sync_their_parent_once(tmp_path: Path, synced: list[Path]) -> None:
    # Accepting a grade into a new node's blob store makes up to 256 shard directories in one parent.
    (tmp_path / "blobs").mkdir()
    assert make_directories(tmp_path / "blobs" / "ab" / "cd", sync=False) == {tmp_path / "blobs",
                                                                            tmp_path / "blobs" / "ab"}  # fmt: skip
    assert synced == []  # left to the caller
    store = BlobStore(tmp_path / "store")
    with IncomingBlobs(store) as incoming:
        shas = []
        for n in range(12):
            data = f"document {n}".encode()
            incoming.begin()
            incoming.write(data)
            incoming.end(hashlib.sha256(data).hexdigest())
            shas.append(hashlib.sha256(data).hexdigest())
        incoming.sync()
        synced.clear()  # the blobs' own bytes; what follows is the naming
        incoming.publish()
    shards = {store.path_for(sha).parent for sha in shas}
    assert len(shards) > 1
    # Each shard, and sha256/ and the store's root (sha256/ was new too), each once.
    assert sorted(synced) == sorted({*shards, store.root / "sha256", store.root})
