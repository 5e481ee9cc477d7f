"""Many blobs streamed into the blob store at once, by a caller that has already checked their SHA-256.

The envelope opener checks every document against the sender's signed manifest while it decrypts it, so
hashing the bytes a second time here would only double the work: the caller vouches for each digest when it
ends a blob. Each blob streams into its own temp file; the fsyncs run on a small pool while the next blob
streams in (a small file's fsync is mostly waiting for the disk), and :meth:`IncomingBlobs.publish` renames
the temp files to their real names only once the caller has confirmed the whole set. A crash at any point
leaves temp files, or whole verified blobs that nothing references yet; never a partial blob under a real
name.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from storage.blobs import INCOMING, BlobStore
from storage.durable_files import make_directories, sync_directory
from storage.temp_files import make_temp

# Files written but not yet fsynced: bounds the open descriptors while the disk catches up.
MAX_UNSYNCED = 32
SYNC_THREADS = 2


def _sync_and_close(out: BinaryIO) -> None:
    try:
        out.flush()
        os.fsync(out.fileno())
    finally:
        out.close()


class IncomingBlobs:
    """``begin``, ``write``…, ``end(sha256)`` per blob; then ``publish`` or ``discard`` (a context manager
    discards whatever was not published when its block raises)."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=SYNC_THREADS, thread_name_prefix="blob-fsync")
        self._unsynced: deque[tuple[Future[None], BinaryIO]] = deque()
        self._current: BinaryIO | None = None
        self._current_name = ""
        self._temps: list[str] = []  # every temp file created, published or not
        self._ended: list[tuple[str, str]] = []  # (temp file, sha256) of the blobs ended so far
        store.tmp_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> IncomingBlobs:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.discard()

    def begin(self) -> None:
        if self._current is not None:
            raise RuntimeError("the previous blob was not ended")
        fd, self._current_name = make_temp(self._store.tmp_dir, INCOMING)
        self._temps.append(self._current_name)
        self._current = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> None:
        assert self._current is not None
        self._current.write(data)

    def end(self, sha256: str) -> None:
        """The blob is complete and its bytes have the SHA-256 ``sha256`` (the caller checked it)."""
        assert self._current is not None
        self._store.path_for(sha256)  # a well-formed name, before anything depends on it
        self._unsynced.append((self._pool.submit(_sync_and_close, self._current), self._current))
        self._ended.append((self._current_name, sha256))
        self._current = None
        while len(self._unsynced) > MAX_UNSYNCED:
            self._unsynced.popleft()[0].result()

    @property
    def sha256s(self) -> list[str]:
        return [sha for _, sha in self._ended]

    def sync(self) -> None:
        """Wait until every ended blob is on disk (raises the first fsync error)."""
        while self._unsynced:
            self._unsynced.popleft()[0].result()

    def publish(self) -> list[str]:
        """Give every ended blob its real name, durably; returns their SHA-256s in the order they came.

        A blob already stored under that name has the same bytes: the rename replaces it atomically.
        """
        if self._current is not None:
            raise RuntimeError("a blob was begun and not ended")
        self.sync()
        directories = set()
        for temp, sha in self._ended:
            final = self._store.path_for(sha)
            if final.parent not in directories:
                directories |= make_directories(final.parent, sync=False)  # a new shard's entry in its parent
                directories.add(final.parent)
            os.replace(temp, final)
        # The renames (and new shard directories) are durable only once their directories are: fsync each
        # once, together, on the pool.
        list(self._pool.map(sync_directory, directories))
        self._pool.shutdown()
        published = self.sha256s
        self._temps.clear()
        self._ended.clear()
        return published

    def discard(self) -> None:
        """Remove every temp file not published. Safe to call more than once."""
        if self._current is not None:
            self._current.close()
            self._current = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        for _, out in self._unsynced:
            out.close()  # a cancelled fsync never closed its file; closing twice is harmless
        self._unsynced.clear()
        for temp in self._temps:
            Path(temp).unlink(missing_ok=True)
        self._temps.clear()
        self._ended.clear()
