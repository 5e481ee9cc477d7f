"""Goal 1: sealing and opening `doc` against raw secretstream, age and gpg on the same bytes.

What each side does:

* raw secretstream push: libsodium's XChaCha20-Poly1305 secretstream over the document's bytes already in
  memory, in the envelope's chunk size (64 KiB), through cffi with preallocated buffers; no I/O at all.
  That is the per-byte work no envelope can avoid, so it is the "what the hardware allows" bound.
* seal: ``crypto.seal_envelope`` in-process, file to a new file: framing, HPKE (ML-KEM-768 + X25519),
  Argon2id of the code once, two Ed25519 signatures, then secretstream over manifest and document. The
  document's SHA-256 is in the manifest already (documents are hashed when stored), so sealing does not
  hash it again.
* open: ``crypto.open_envelope`` in-process, file to a new file: verification, Argon2id, decapsulation,
  secretstream, and the SHA-256 check of every document.
* age -e / age -d (whole process): X25519 recipient, ChaCha20-Poly1305 STREAM in 64 KiB chunks, no KDF.
* gpg --sign --encrypt (whole process): RSA-3072 keys, AES-256, ZLIB compression level 6 by default,
  and with ``-z 0`` no compression.

Argon2id is a per-envelope cost, not a per-byte one: the goal rows use envelopes sealed with the
cheapest Argon2id (the streaming cost), and informational rows give the production figures
(t=3, m=256 MiB), whose fixed cost is also reported on its own.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nacl._sodium import ffi, lib  # raw libsodium for the baseline: no allocation, no copy per chunk
from nacl.bindings import (
    crypto_secretstream_xchacha20poly1305_init_push,
    crypto_secretstream_xchacha20poly1305_state,
)

from crypto import EncryptionKey, IdentityKey, generate_code, open_envelope, seal_envelope
from crypto._envelope_kdf import code_key
from protocol import Argon2Params, Manifest, ManifestRecord, ManifestStudent, OpenPolicy
from protocol.envelope_format import DEFAULT_ARGON2, DEFAULT_POLICY
from tests.bench.common import (
    Extras,
    MiB,
    Row,
    drop_file,
    log,
    ratio_row,
    run_process,
    stats,
    throughput,
    tool,
)
from tests.bench.workloads import Doc, make_doc

CHUNK = 1 << 16
CHEAP = Argon2Params(time_cost=1, memory_kib=8)
CHEAP_POLICY = OpenPolicy(min_argon2=CHEAP)


@dataclass(frozen=True, slots=True)
class Parties:
    sender: IdentityKey
    recipient: EncryptionKey


def one_document_manifest(parties: Parties, doc: Doc, now: int) -> Manifest:
    student = ManifestStudent(sis_id="S1", given_name="Ann", family_name="Lee", birth_date="2012-02-03")
    record = ManifestRecord(
        kind="document", record_id="d1", student_sis_id="S1", length=doc.size, sha256=doc.sha256,
        media_type="application/pdf", title="evaluation",
    )  # fmt: skip
    return Manifest(
        sender_domain="a.example.org", sender_key_id=parties.sender.public_key.key_id,
        recipient_domain="b.example.org", created=now, students=(student,), records=(record,),
    )  # fmt: skip


def _seal(parties: Parties, doc: Doc, out: Path, argon2: Argon2Params, code) -> float:
    now = int(time.time())
    manifest = one_document_manifest(parties, doc, now)
    drop_file(out)
    started = time.perf_counter()
    with doc.path.open("rb") as source, out.open("wb") as sink:
        seal_envelope(
            source, sink, manifest=manifest, sender_key=parties.sender,
            recipient_key=parties.recipient.public_key, code=code, now=now, expires=now + 86400, argon2=argon2,
        )  # fmt: skip
    return time.perf_counter() - started


def _open(parties: Parties, envelope: Path, out: Path, code, policy: OpenPolicy) -> float:
    drop_file(out)
    started = time.perf_counter()
    with envelope.open("rb") as source, out.open("wb") as sink:
        open_envelope(
            source, sink, code=code, sender_key=parties.sender.public_key, recipient_key=parties.recipient,
            recipient_domain="b.example.org", now=time.time(), policy=policy,
        )  # fmt: skip
    return time.perf_counter() - started


def _raw_push(data: bytes) -> float:
    """The bound: secretstream push over bytes in memory, chunk by chunk, into one reused buffer."""
    state = crypto_secretstream_xchacha20poly1305_state()
    crypto_secretstream_xchacha20poly1305_init_push(state, os.urandom(32))
    source = ffi.from_buffer(data)
    out = ffi.new("unsigned char[]", CHUNK + 17)
    push = lib.crypto_secretstream_xchacha20poly1305_push
    statebuf, null = state.statebuf, ffi.NULL
    size = len(data)
    started = time.perf_counter()
    for offset in range(0, size, CHUNK):
        n = min(CHUNK, size - offset)
        push(statebuf, out, null, source + offset, n, null, 0, 3 if offset + n == size else 0)
    return time.perf_counter() - started


class _Gpg:
    """A throwaway GnuPG home with a sender and a recipient key made with gpg's defaults."""

    def __init__(self, folder: Path) -> None:
        self.home = folder / "gnupg"
        self.home.mkdir(mode=0o700)
        for who in ("sender", "recipient"):
            subprocess.run(
                ["gpg", "--homedir", str(self.home), "--batch", "--passphrase", "", "--quick-gen-key",
                 f"{who} <{who}@example.org>", "default", "default", "never"],
                check=True, capture_output=True,
            )  # fmt: skip

    def argv(self, source: Path, out: Path, *extra: str) -> list[str]:
        return ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--trust-model", "always",
                "--pinentry-mode", "loopback", "--passphrase", "", "-u", "sender@example.org",
                "-r", "recipient@example.org", *extra, "--sign", "--encrypt", "-o", str(out), str(source)]  # fmt: skip

    def close(self) -> None:
        # gpg started an agent for this home; stop exactly that one.
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"], check=False,
                       capture_output=True)  # fmt: skip


def run(folder: Path, *, size: int, runs: int, extras: Extras) -> list[Row]:
    doc = make_doc(folder, size=size)
    parties = Parties(IdentityKey.generate(), EncryptionKey.generate())
    code = generate_code()
    with doc.path.open("rb") as handle:
        data = handle.read()
    assert hashlib.sha256(data).digest() == doc.sha256
    sealed, sealed_prod, opened = folder / "doc.env", folder / "doc-prod.env", folder / "doc.opened"
    times: dict[str, list[float]] = {k: [] for k in (
        "raw", "seal", "seal_prod", "open", "open_prod", "age_e", "age_d", "gpg", "gpg_z0")}  # fmt: skip
    age = tool("age") and tool("age-keygen")
    gpg = _Gpg(folder) if tool("gpg") else None
    if age:
        keygen = run_process(["age-keygen", "-o", str(folder / "age.key")]).check()
        recipient = next(line.split(": ", 1)[1] for line in keygen.stderr.splitlines() if "ublic key" in line)
    try:
        for i in range(runs):
            log(f"  goal 1: run {i + 1}/{runs}")
            # Interleaved, so that a noisy moment hits every side alike.
            times["raw"].append(_raw_push(data))
            times["seal"].append(_seal(parties, doc, sealed, CHEAP, code))
            if age:
                drop_file(folder / "doc.age")
                times["age_e"].append(
                    run_process(["age", "-e", "-r", recipient, "-o", str(folder / "doc.age"), str(doc.path)])
                    .check().wall)  # fmt: skip
            times["open"].append(_open(parties, sealed, opened, code, CHEAP_POLICY))
            if age:
                drop_file(opened)
                times["age_d"].append(
                    run_process(["age", "-d", "-i", str(folder / "age.key"), "-o", str(opened),
                                 str(folder / "doc.age")]).check().wall)  # fmt: skip
            if i < max(2, runs // 2):  # production Argon2id and gpg are slow: fewer runs are enough
                times["seal_prod"].append(_seal(parties, doc, sealed_prod, DEFAULT_ARGON2, code))
                times["open_prod"].append(_open(parties, sealed_prod, opened, code, DEFAULT_POLICY))
                if gpg:
                    for key, extra in (("gpg", ()), ("gpg_z0", ("-z", "0"))):
                        drop_file(folder / "doc.gpg")
                        times[key].append(
                            run_process(gpg.argv(doc.path, folder / "doc.gpg", *extra)).check().wall
                        )
        drop_file(folder / "doc.gpg")
    finally:
        if gpg:
            gpg.close()
    argon2 = [_time(lambda: code_key(code, b"\0" * 16, DEFAULT_ARGON2)) for _ in range(3)]
    extras["goal1.argon2id_production_seconds"] = stats(argon2).to_json()
    extras["goal1.bytes"] = size
    for name, values in times.items():
        if values:
            extras[f"goal1.seconds.{name}"] = stats(values).to_json()
    mib = f"{size // MiB} MiB"
    t = {k: throughput(size, v) for k, v in times.items() if v}
    fixed = stats(argon2).median
    seal, opened_ = "seal_envelope (in-process)", "open_envelope + digests"
    seal_prod, open_prod = "seal, Argon2id t=3 m=256MiB", "open, Argon2id t=3 m=256MiB"
    rows = [
        ratio_row("1a", f"seal doc ({mib}) vs raw secretstream", baseline="raw push, in memory",
                  measured="seal_envelope, file->file", base=t["raw"], got=t["seal"], unit="MiB/s", at_least=0.85,
                  note="goal rows 1a-1e: per-byte cost (envelopes with the cheapest Argon2id); rows marked * add "
                       f"the production Argon2id, {fixed:.2f} s per envelope whatever its size "
                       f"(= {fixed * t['seal'].median:.0f} MiB of sealing)"),
    ]  # fmt: skip
    if age:
        rows += [
            ratio_row("1b", f"seal doc ({mib}) vs age -e", baseline="age -e (whole process)", measured=seal,
                      base=t["age_e"], got=t["seal"], unit="MiB/s", at_least=1.0),
            ratio_row("1c", f"open doc ({mib}) vs age -d", baseline="age -d (whole process)", measured=opened_,
                      base=t["age_d"], got=t["open"], unit="MiB/s", at_least=1.0),
            ratio_row("1b*", f"seal doc ({mib}) vs age -e", baseline="age -e (whole process)", measured=seal_prod,
                      base=t["age_e"], got=t["seal_prod"], unit="MiB/s", at_least=1.0, info=True),
            ratio_row("1c*", f"open doc ({mib}) vs age -d", baseline="age -d (whole process)", measured=open_prod,
                      base=t["age_d"], got=t["open_prod"], unit="MiB/s", at_least=1.0, info=True),
        ]  # fmt: skip
    else:
        rows += [_skipped("1b", "seal vs age -e", "age"), _skipped("1c", "open vs age -d", "age")]
    if gpg:
        rows += [
            ratio_row("1d", f"seal doc ({mib}) vs gpg defaults", baseline="gpg --sign --encrypt", measured=seal,
                      base=t["gpg"], got=t["seal"], unit="MiB/s", at_least=10.0),
            ratio_row("1e", f"seal doc ({mib}) vs gpg -z 0", baseline="gpg -z 0 --sign --encrypt", measured=seal,
                      base=t["gpg_z0"], got=t["seal"], unit="MiB/s", at_least=2.0),
            ratio_row("1d*", f"seal doc ({mib}) vs gpg defaults", baseline="gpg --sign --encrypt",
                      measured=seal_prod, base=t["gpg"], got=t["seal_prod"], unit="MiB/s", at_least=10.0, info=True),
            ratio_row("1e*", f"seal doc ({mib}) vs gpg -z 0", baseline="gpg -z 0 --sign --encrypt",
                      measured=seal_prod, base=t["gpg_z0"], got=t["seal_prod"], unit="MiB/s", at_least=2.0,
                      info=True),
        ]  # fmt: skip
    else:
        rows += [_skipped("1d", "seal vs gpg defaults", "gpg"), _skipped("1e", "seal vs gpg -z 0", "gpg")]
    return rows


def _time(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _skipped(goal: str, title: str, what: str) -> Row:
    return Row(goal, title, f"{what} (not installed)", "-", "MiB/s", "-", met=None,
               note=f"skipped: install {what} (Debian: apt-get install age gnupg)")  # fmt: skip
