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
