import hashlib
import io
from pathlib import Path

import pytest

from storage.blobs import BlobStore
from storage.errors import BlobCorrupt, BlobMissing


def test_put_and_read_back(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"x" * 3_000_000
    blob = store.put_file(io.BytesIO(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest() and blob.length == len(data)
    assert b"".join(store.read_chunks(blob.sha256)) == data
    assert store.verify(blob.sha256) == blob
    # Content-addressed: the same bytes again are the same blob.
    assert store.put_chunks([data[:10], data[10:]]) == blob


def test_wrong_expected_hash_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(BlobCorrupt):
        store.put_chunks([b"abc"], expect_sha256="0" * 64)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_corruption_and_absence_are_detected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = store.put_chunks([b"hello"])
    store.path_for(blob.sha256).write_bytes(b"hellO")
    with pytest.raises(BlobCorrupt):
        store.verify(blob.sha256)
    assert store.delete(blob.sha256)
    with pytest.raises(BlobMissing):
        list(store.read_chunks(blob.sha256))
    with pytest.raises(BlobMissing):
        store.path_for("../../etc/passwd")


def test_incoming_blobs_get_their_names_only_when_published(tmp_path: Path) -> None:
    from storage.incoming_blobs import IncomingBlobs

    store = BlobStore(tmp_path)
    pieces = [b"alpha" * 1000, b"", b"beta"]
    with IncomingBlobs(store) as incoming:
        for data in pieces:
            incoming.begin()
            incoming.write(memoryview(data))
            incoming.end(hashlib.sha256(data).hexdigest())
        incoming.sync()
        assert not any(store.exists(hashlib.sha256(d).hexdigest()) for d in pieces)
        published = incoming.publish()
    assert published == [hashlib.sha256(d).hexdigest() for d in pieces]
    assert all(store.verify(sha).length == len(d) for sha, d in zip(published, pieces, strict=True))
    assert not list(store.tmp_dir.iterdir())


def test_incoming_blobs_not_published_leave_nothing(tmp_path: Path) -> None:
    from storage.incoming_blobs import IncomingBlobs

    store = BlobStore(tmp_path)
    with pytest.raises(RuntimeError), IncomingBlobs(store) as incoming:
        for n in range(50):  # more than are fsynced at once
            incoming.begin()
            incoming.write(b"x" * n)
            incoming.end(hashlib.sha256(b"x" * n).hexdigest())
        incoming.begin()
        incoming.write(b"half a docu")
        raise RuntimeError("the envelope broke off")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_staged_blob_has_its_name_only_once_published(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.stage_file(io.BytesIO(b"report card")) as staged:
        sha = hashlib.sha256(b"report card").hexdigest()
        assert staged.blob.sha256 == sha and staged.blob.length == 11
        assert not store.exists(sha) and len(list(store.tmp_dir.iterdir())) == 1
        assert staged.publish() == staged.blob
        with pytest.raises(RuntimeError):
            staged.publish()
    assert store.exists(sha) and not list(store.tmp_dir.iterdir())


def test_a_staged_blob_left_unpublished_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(KeyError), store.stage_chunks([b"a", b"b"]) as staged:
        raise KeyError("the transaction failed")
    assert not store.exists(staged.blob.sha256) and not list(store.tmp_dir.iterdir())
    staged.discard()  # twice is harmless
    with store.stage_chunks([b"same"]) as first, store.stage_chunks([b"same"]) as second:
        first.publish()
        second.publish()  # the same bytes again replace the blob atomically
    assert b"".join(store.read_chunks(first.blob.sha256)) == b"same"
