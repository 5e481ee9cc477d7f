"""What is kept of envelope uploads that broke off: who may write it, when it is kept, when it goes."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from node import partial_envelopes
from node.envelope_resume import adopt_orphans
from node.home import Node, open_node
from node.partial_envelopes import Uploads, may_keep, partial_path, sweep
from protocol.envelope_upload import RESUMABLE_LENGTH, UploadInProgress

ID, OTHER = "01M92KFXD8SBS8ESECXKAHSWMX", "01M92KFXD8SBS8ESECXKAHSWMY"


def _kept(node: Node, envelope_id: str, *, age_hours: float) -> Path:
    path = partial_path(node, envelope_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 10)
    then = time.time() - age_hours * 3600
    os.utime(path, (then, then))
    return path


def test_a_resumed_upload_waits_for_any_other_upload_of_the_same_envelope() -> None:
    uploads = Uploads()
    with uploads.whole(ID), uploads.whole(ID):  # a retry may overlap the try it repeats
        with pytest.raises(UploadInProgress), uploads.resumed(ID):
            pass
        with uploads.resumed(OTHER):
            assert uploads.resuming(OTHER) and not uploads.resuming(ID)
    assert not uploads.arriving(ID)
    with uploads.resumed(ID):
        assert uploads.arriving(ID)
        with pytest.raises(UploadInProgress), uploads.resumed(ID):
            pass
        with uploads.whole(ID):  # a whole upload is never refused; it only keeps nothing beside a resumed one
            pass
    assert not uploads.arriving(ID)


def test_what_nobody_resumed_goes_after_the_hours_kept(node: Node) -> None:
    third = "01" + "A" * 24
    old, fresh, busy = _kept(node, ID, age_hours=73), _kept(node, OTHER, age_hours=1), _kept(node, third, age_hours=100)
    envelope = node.config.envelopes_dir / "in" / f"{ID}.env"
    envelope.write_bytes(b"a received envelope is not a partial one")
    os.utime(envelope, (0, 0))
    uploads = Uploads()
    with uploads.resumed(third):
        assert sweep(node, uploads) == 1
    assert not old.exists() and fresh.exists() and busy.exists() and envelope.exists()
    assert sweep(node, Uploads(), now=time.time() + 72 * 3600) == 2


def test_nothing_is_kept_when_it_is_switched_off_too_small_or_from_a_stranger(
    make_home: Callable[..., Path], node: Node
) -> None:
    assert not may_keep(node, "b.example.org", RESUMABLE_LENGTH)  # not a peer of this node at all
    assert not may_keep(node, "b.example.org", RESUMABLE_LENGTH - 1)
    off = open_node(make_home("c.example.org"), {"SATCHEL_ENVELOPE_PARTIAL_KEEP_HOURS": "0"})
    try:
        assert off.config.envelope.partial_keep_hours == 0
        _kept(off, ID, age_hours=0)
        assert sweep(off, Uploads()) == 1  # and what a node kept before is not kept on
        assert not partial_envelopes.may_keep(off, "b.example.org", 1 << 30)
    finally:
        off.close()


def test_only_an_envelope_this_node_may_keep_is_adopted_from_a_writer_that_died(node: Node) -> None:
    """What is not an envelope for this node from a peer it keeps for (here: random bytes, a small file, a
    file whose writer still runs) is left for the hourly sweep, never named as an envelope's kept part."""
    dead = subprocess.Popen(["true"])  # a process that has ended: its id names a writer that is gone
    dead.wait()
    inbox = node.config.envelopes_dir / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    junk = inbox / f".receiving-p{dead.pid}-junk"
    junk.write_bytes(os.urandom(RESUMABLE_LENGTH + 10))
    small = inbox / f".receiving-p{dead.pid}-small"
    small.write_bytes(b"x" * 100)
    live = inbox / f".receiving-p{os.getpid()}-live"
    live.write_bytes(os.urandom(RESUMABLE_LENGTH + 10))
    assert adopt_orphans(node, Uploads()) == 0
    assert junk.exists() and small.exists() and live.exists()
    assert not list(inbox.glob(".partial-*"))
