"""Sealing and opening envelopes: round trips, tampering, wrong inputs, and the seams' guarantees."""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import replace

import pytest
from envelope_fixtures import (
    CHUNK,
    CODE,
    EXPIRES,
    FAST,
    NOW,
    OTHER_RECIPIENT,
    OTHER_SENDER,
    POLICY,
    RECIPIENT,
    RECIPIENT_DOMAIN,
    SENDER,
    document_record,
    make_manifest,
    manifests_with_documents,
    open_bytes,
    seal_bytes,
)
from hypothesis import given
from hypothesis import strategies as st

from crypto import (
    Code,
    EncryptionKey,
    generate_code,
    peek_unverified_recipient,
    peek_unverified_sender,
    seal_envelope,
    verify_envelope_header,
)
from crypto._envelope_seal import _seal_from_parts
from crypto._envelope_stream import TAG_FINAL, TAG_MESSAGE, new_state
from protocol import Argon2Params, InvalidInput, OpenPolicy, SatchelError
from protocol.envelope_format import CHUNK_OVERHEAD, parse_unverified_prefix
from protocol.manifest import DEFAULT_MAX_MANIFEST_LENGTH, MAX_NAME, Manifest, encode_manifest

DOCS = [bytes(range(256)) * 10, b"", b"tail" * 100]
ENVELOPE = seal_bytes(DOCS)
PREFIX = parse_unverified_prefix(ENVELOPE, max_header_length=4096)


def _code_of(envelope: bytes, **kw: object) -> str:
    with pytest.raises(SatchelError) as info:
        open_bytes(envelope, **kw)  # type: ignore[arg-type]
    return info.value.code


def _chunks(envelope: bytes) -> list[bytes]:
    body, size = envelope[PREFIX.length :], CHUNK + CHUNK_OVERHEAD
    return [body[i : i + size] for i in range(0, len(body), size)]


@given(manifests_with_documents(), st.sampled_from([1024, 2048]))
def test_round_trip_for_any_manifest_and_payload(case: tuple, chunk_size: int) -> None:
    manifest, documents = case
    envelope = seal_bytes(documents, manifest=manifest, chunk_size=chunk_size)
    opened, staged = open_bytes(envelope)
    assert staged == b"".join(documents)
    assert opened.manifest == manifest
    assert opened.header.payload_length == 64 + opened.header.manifest_length + len(staged)
    assert opened.header.envelope_length == len(envelope)


def test_payload_sizes_from_zero_to_several_chunks() -> None:
    for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3]:
        for split in (size // 2, size):
            docs = [bytes([size % 251]) * split, bytes([7]) * (size - split)]
            _, staged = open_bytes(seal_bytes(docs))
            assert staged == b"".join(docs)


def test_the_manifest_signature_is_kept_for_provenance() -> None:
    from crypto import verify_manifest

    opened, _ = open_bytes(ENVELOPE)
    assert (
        verify_manifest(opened.manifest_bytes, opened.manifest_signature, SENDER.public_key)
        == opened.manifest
    )
    with pytest.raises(SatchelError) as info:
        verify_manifest(opened.manifest_bytes, opened.manifest_signature, OTHER_SENDER.public_key)
    assert info.value.code == "manifest.signature_invalid"


@given(st.integers(min_value=0, max_value=len(ENVELOPE) * 8 - 1))
def test_any_flipped_bit_is_rejected(bit: int) -> None:
    damaged = bytearray(ENVELOPE)
    damaged[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SatchelError):
        open_bytes(bytes(damaged))


def test_a_flipped_bit_in_every_byte_is_rejected_with_a_fitting_code() -> None:
    prefix_codes = {
        "envelope.malformed", "envelope.unsupported_version", "envelope.unsupported_suite",
        "envelope.truncated", "envelope.too_large", "envelope.signature_invalid",
    }  # fmt: skip
    for position in range(len(ENVELOPE)):
        damaged = bytearray(ENVELOPE)
        damaged[position] ^= 1 << (position % 8)
        code = _code_of(bytes(damaged))
        if position < PREFIX.length:
            assert code in prefix_codes, (position, code)
        else:
            assert code == "envelope.corrupt", (position, code)


def test_every_truncation_is_reported_as_truncated() -> None:
    boundaries = {PREFIX.length + i * (CHUNK + CHUNK_OVERHEAD) for i in range(len(_chunks(ENVELOPE)))}
    cuts = set(range(0, PREFIX.length + 64)) | set(range(PREFIX.length, len(ENVELOPE), 7))
    cuts |= {b + d for b in boundaries for d in (-1, 0, 1)}
    for cut in sorted(c for c in cuts if 0 <= c < len(ENVELOPE)):
        assert _code_of(ENVELOPE[:cut]) == "envelope.truncated", cut


def test_reordered_duplicated_and_dropped_chunks_are_rejected() -> None:
    chunks = _chunks(ENVELOPE)
    assert len(chunks) >= 4
    head = ENVELOPE[: PREFIX.length]
    swapped = head + b"".join([chunks[1], chunks[0], *chunks[2:]])
    duplicated = head + b"".join([chunks[0], chunks[0], *chunks[2:]])
    middle_dropped = head + b"".join([chunks[0], *chunks[2:]])
    final_first = head + b"".join([chunks[-1], *chunks[1:-1], chunks[0]])
    assert _code_of(swapped) == "envelope.corrupt"
    assert _code_of(duplicated) == "envelope.corrupt"
    assert _code_of(middle_dropped) in {"envelope.corrupt", "envelope.truncated"}
    assert _code_of(final_first) == "envelope.corrupt"
    assert _code_of(ENVELOPE + b"\x00") == "envelope.trailing_bytes"
    assert _code_of(ENVELOPE + chunks[-1]) == "envelope.trailing_bytes"


@given(st.integers(min_value=0, max_value=(1 << 60) - 1))
def test_a_wrong_code_is_rejected_with_the_opaque_code(value: int) -> None:
    other = Code._from_int(value)
    if other == CODE:
        return
    assert _code_of(ENVELOPE, code=other) == "envelope.wrong_code_or_key"


@given(st.permutations(range(len(_chunks(ENVELOPE)))))
def test_any_reordering_of_chunks_is_rejected(order: list[int]) -> None:
    chunks = _chunks(ENVELOPE)
    if order == sorted(order):
        return
    reordered = ENVELOPE[: PREFIX.length] + b"".join(chunks[i] for i in order)
    assert _code_of(reordered) == "envelope.corrupt"


@given(st.binary(min_size=96, max_size=96))
def test_any_other_recipient_key_is_refused(secret: bytes) -> None:
    assert _code_of(ENVELOPE, recipient_key=EncryptionKey(secret)) == "envelope.not_recipient"


@given(st.integers(min_value=EXPIRES, max_value=2**40))
def test_opening_at_or_after_expiry_is_refused(now: int) -> None:
    assert _code_of(ENVELOPE, now=now) == "envelope.expired"


def test_a_wrong_code_and_an_undecapsulatable_key_look_the_same() -> None:
    # A validly signed envelope whose encapsulation was made for another key.
    out = io.BytesIO()
    _seal_from_parts(
        io.BytesIO(b""), out, manifest=make_manifest([]), sender_key=SENDER, recipient_key=RECIPIENT.public_key,
        code=CODE, now=NOW, expires=EXPIRES, kind="transfer", argon2=FAST, chunk_size=CHUNK,
        envelope_id=bytes(16), hpke_secret=bytes(32), stream_header=bytes(24), encapsulation=bytes(1168),
    )  # fmt: skip
    with pytest.raises(SatchelError) as bad_key:
        open_bytes(out.getvalue())
    with pytest.raises(SatchelError) as bad_code:
        open_bytes(ENVELOPE, code=Code._from_int(1))
    assert type(bad_key.value) is type(bad_code.value)
    assert bad_key.value.to_dict() == bad_code.value.to_dict()


def test_wrong_recipient_sender_or_time_are_rejected_with_their_codes() -> None:
    assert _code_of(ENVELOPE, recipient_key=OTHER_RECIPIENT) == "envelope.not_recipient"
    assert _code_of(ENVELOPE, recipient_domain="c.example.org") == "envelope.not_recipient"
    assert _code_of(ENVELOPE, sender_key=OTHER_SENDER.public_key) == "envelope.signature_invalid"
    assert _code_of(ENVELOPE, now=EXPIRES) == "envelope.expired"
    assert _code_of(ENVELOPE, now=EXPIRES + 10**6) == "envelope.expired"
    assert _code_of(ENVELOPE, now=NOW - 301) == "envelope.not_yet_valid"
    open_bytes(ENVELOPE, now=NOW - 300)
    open_bytes(ENVELOPE, now=EXPIRES - 1)


def test_a_node_with_several_keys_opens_with_the_one_the_header_names() -> None:
    opened, _ = open_bytes(ENVELOPE, recipient_key=[OTHER_RECIPIENT, RECIPIENT])
    assert opened.header.recipient_key_id == RECIPIENT.public_key.key_id
    assert _code_of(ENVELOPE, recipient_key=[OTHER_RECIPIENT]) == "envelope.not_recipient"
    with pytest.raises(TypeError):
        open_bytes(ENVELOPE, recipient_key=[])


def test_receiver_limits_are_parameters() -> None:
    assert _code_of(ENVELOPE, policy=OpenPolicy()) == "envelope.weak_kdf_params"
    assert (
        _code_of(ENVELOPE, policy=OpenPolicy(min_argon2=FAST, max_payload_length=100)) == "envelope.too_large"
    )
    assert (
        _code_of(ENVELOPE, policy=OpenPolicy(min_argon2=FAST, max_manifest_length=10)) == "envelope.too_large"
    )
    assert (
        _code_of(ENVELOPE, policy=OpenPolicy(min_argon2=FAST, max_header_length=64)) == "envelope.too_large"
    )
    big_chunks = seal_bytes(DOCS, chunk_size=1 << 23)
    assert _code_of(big_chunks) == "envelope.too_large"
    costly = seal_bytes(DOCS, argon2=Argon2Params(time_cost=2, memory_kib=16))
    assert (
        _code_of(costly, policy=OpenPolicy(min_argon2=FAST, max_argon2=FAST))
        == "envelope.excessive_kdf_params"
    )
    open_bytes(costly)


def test_verify_envelope_header_checks_everything_but_the_code() -> None:
    header = verify_envelope_header(
        ENVELOPE[:5000], sender_key=SENDER.public_key, recipient_key=RECIPIENT.public_key,
        recipient_domain=RECIPIENT_DOMAIN, now=NOW, policy=POLICY,
    )  # fmt: skip
    assert header.envelope_length == len(ENVELOPE)
    assert header.sender_domain == "a.example.org" and header.recipient_key_id == RECIPIENT.public_key.key_id
    assert peek_unverified_sender(ENVELOPE[:329]) == ("a.example.org", SENDER.public_key.key_id)
    assert peek_unverified_recipient(ENVELOPE) == (RECIPIENT_DOMAIN, RECIPIENT.public_key.key_id)
    assert peek_unverified_recipient(ENVELOPE[: PREFIX.length]) == peek_unverified_recipient(ENVELOPE)
    with pytest.raises(SatchelError) as info:
        verify_envelope_header(
            ENVELOPE, sender_key=SENDER.public_key, recipient_key=OTHER_RECIPIENT.public_key,
            recipient_domain=RECIPIENT_DOMAIN, now=NOW, policy=POLICY,
        )  # fmt: skip
    assert info.value.code == "envelope.not_recipient"


def test_sealing_refuses_a_payload_that_disagrees_with_the_manifest() -> None:
    manifest = make_manifest([b"abc"])
    for payload in (b"ab", b"abcd"):
        with pytest.raises(SatchelError) as info:
            seal_envelope(
                io.BytesIO(payload), io.BytesIO(), manifest=manifest, sender_key=SENDER,
                recipient_key=RECIPIENT.public_key, code=CODE, now=NOW, expires=EXPIRES, argon2=FAST,
            )  # fmt: skip
        assert info.value.code == "envelope.payload_length_mismatch"
    with pytest.raises(InvalidInput):
        seal_bytes([b"abc"], sender_key=OTHER_SENDER)
    with pytest.raises(InvalidInput):
        seal_bytes([b"abc"], expires=NOW)


def test_a_changed_document_is_caught_by_its_digest() -> None:
    manifest = make_manifest([b"original"])
    envelope = seal_bytes([b"modified"], manifest=manifest)
    assert _code_of(envelope) == "envelope.document_digest_mismatch"


def test_a_stream_started_from_a_chosen_header_is_standard_secretstream() -> None:
    # The sealer starts its stream with init_pull(header, key); libsodium's init_push draws the header at
    # random and derives the same state, so the output is ordinary secretstream (spec/envelope.md §6).
    from nacl import bindings as b

    key = bytes(range(32))
    pushed = b.crypto_secretstream_xchacha20poly1305_state()
    header = b.crypto_secretstream_xchacha20poly1305_init_push(pushed, key)
    chosen = new_state(key, header)
    for tag in (TAG_MESSAGE, TAG_MESSAGE, TAG_FINAL):
        assert b.crypto_secretstream_xchacha20poly1305_push(
            pushed, b"chunk", None, tag
        ) == b.crypto_secretstream_xchacha20poly1305_push(chosen, b"chunk", None, tag)


def test_sealing_is_randomised_and_codes_differ() -> None:
    assert seal_bytes(DOCS) != seal_bytes(DOCS)
    assert generate_code() != generate_code()


def test_short_reads_from_the_source_are_fine() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data, self._pos = data, 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            piece = self._data[self._pos : self._pos + min(n, 97)]
            self._pos += len(piece)
            return piece

    sink = io.BytesIO()
    from crypto import open_envelope

    open_envelope(
        Trickle(ENVELOPE), sink, code=CODE, sender_key=SENDER.public_key, recipient_key=RECIPIENT,
        recipient_domain=RECIPIENT_DOMAIN, now=NOW, policy=POLICY,
    )  # fmt: skip
    assert sink.getvalue() == b"".join(DOCS)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_satchel_errors(data: bytes) -> None:
    for candidate in (data, ENVELOPE[:40] + data, ENVELOPE[: PREFIX.length] + data):
        with pytest.raises(SatchelError):
            open_bytes(candidate)
        with pytest.raises(SatchelError):
            peek_unverified_sender(candidate[:20])
        with contextlib.suppress(SatchelError):  # a well-formed header may follow the genuine prefix's start
            assert peek_unverified_recipient(candidate) == (RECIPIENT_DOMAIN, RECIPIENT.public_key.key_id)
        with pytest.raises(SatchelError):
            verify_envelope_header(
                candidate[: PREFIX.length - 1], sender_key=SENDER.public_key, recipient_key=RECIPIENT.public_key,
                recipient_domain=RECIPIENT_DOMAIN, now=NOW, policy=POLICY,
            )  # fmt: skip


def test_no_secret_or_record_content_in_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    opened, _ = open_bytes(ENVELOPE)
    code_text = CODE.reveal()
    shown = " ".join(
        [
            repr(CODE),
            str(CODE),
            repr(RECIPIENT),
            repr(SENDER),
            repr(opened),
            repr(opened.manifest),
            str(opened),
        ]
    )
    for secret in (
        code_text,
        code_text.replace("-", ""),
        "Ann",
        "Lee",
        "2010-02-03",
        RECIPIENT._secret.hex()[:16],
    ):
        assert secret not in shown
    try:
        open_bytes(ENVELOPE, code=Code._from_int(5))
    except SatchelError as exc:
        assert Code._from_int(5).reveal() not in str(exc.to_dict())
    assert code_text not in caplog.text


class _Recorder:
    """A DocumentSink that keeps what it is told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def begin(self, record) -> None:
        self.calls.append(("begin", record.record_id))

    def write(self, data: memoryview) -> None:
        self.calls.append(("write", bytes(data)))

    def end(self, record) -> None:
        self.calls.append(("end", record.record_id))


def _open_into(envelope: bytes, sink: _Recorder):
    from crypto import open_envelope

    return open_envelope(io.BytesIO(envelope), sink, code=CODE, sender_key=SENDER.public_key,
                         recipient_key=RECIPIENT, recipient_domain=RECIPIENT_DOMAIN, now=NOW + 1,
                         policy=POLICY)  # fmt: skip


def test_a_document_sink_is_told_where_each_document_starts_and_that_it_checked_out() -> None:
    sink = _Recorder()
    opened = _open_into(ENVELOPE, sink)
    ids = [r.record_id for r in opened.manifest.documents()]
    documents: list[tuple[str, bytes]] = []
    for kind, value in sink.calls:
        if kind == "begin":
            documents.append((str(value), b""))
        elif kind == "write":
            documents[-1] = (documents[-1][0], documents[-1][1] + bytes(value))  # type: ignore[arg-type]
        else:
            assert value == documents[-1][0]
    assert [c for c in sink.calls if c[0] == "end"] == [("end", i) for i in ids]
    assert documents == list(zip(ids, DOCS, strict=True))  # the empty document too


def test_a_document_that_fails_its_digest_gets_no_end() -> None:
    manifest = make_manifest([b"first", b"original"])
    sink = _Recorder()
    with pytest.raises(SatchelError) as info:
        _open_into(seal_bytes([b"first", b"modified"], manifest=manifest), sink)
    assert info.value.code == "envelope.document_digest_mismatch"
    ends = [value for kind, value in sink.calls if kind == "end"]
    begins = [value for kind, value in sink.calls if kind == "begin"]
    assert len(begins) == 2 and ends == begins[:1]


def test_sealing_refuses_a_manifest_no_receiver_would_open() -> None:
    record = replace(document_record("d", b""), title="t" * MAX_NAME)

    def records(n: int) -> Manifest:
        return make_manifest([], extra_records=[replace(record, record_id=f"d{i}") for i in range(n)])

    each = len(encode_manifest(records(2))) - len(encode_manifest(records(1)))
    manifest = records(DEFAULT_MAX_MANIFEST_LENGTH // each + 1)
    assert len(encode_manifest(manifest)) > DEFAULT_MAX_MANIFEST_LENGTH
    out = io.BytesIO()
    with pytest.raises(SatchelError) as refused:
        seal_envelope(io.BytesIO(), out, manifest=manifest, sender_key=SENDER, recipient_key=RECIPIENT.public_key,
                      code=CODE, now=NOW, expires=EXPIRES, argon2=FAST)  # fmt: skip
    assert (refused.value.code, refused.value.field) == ("envelope.too_large", "manifest")
    assert out.getvalue() == b""  # refused before a byte is written


def test_sealed_again_under_its_id_by_another_key_the_same_code_opens_it() -> None:
    """What a sender does once the key that signed an undelivered envelope is revoked (node.envelope_reseal)."""
    documents = [b"first document", b"second" * 1000]
    first = seal_bytes(documents)
    envelope_id = open_bytes(first)[0].header.envelope_id
    manifest = replace(make_manifest(documents), sender_key_id=OTHER_SENDER.public_key.key_id)
    again = seal_bytes(documents, manifest=manifest, sender_key=OTHER_SENDER, envelope_id=envelope_id)
    assert again[-64:] != first[-64:]  # a new payload key: nothing of the first is reused
    opened, staged = open_bytes(again, sender_key=OTHER_SENDER.public_key)  # the code given out for the first
    assert staged == b"".join(documents) and opened.manifest == manifest
    assert opened.header.envelope_id == envelope_id and opened.header.sender_key_id == OTHER_SENDER.public_key.key_id
    with pytest.raises(SatchelError) as wrong:
        open_bytes(again, sender_key=OTHER_SENDER.public_key, code=Code._from_int(0x0123456789ABCDF))
    assert wrong.value.code == "envelope.wrong_code_or_key"


@pytest.mark.parametrize("envelope_id", ["", "not a ulid", "8" * 26, "01hzx3j5k6m7n8p9q0r1s2t3v4!"])
def test_an_envelope_id_to_seal_again_under_must_be_a_ulid(envelope_id: str) -> None:
    with pytest.raises(SatchelError) as refused:
        seal_bytes([b"x"], envelope_id=envelope_id)
    assert (refused.value.code, refused.value.field) == ("envelope.malformed", "envelope_id")


def test_a_manifest_encoded_by_the_caller_is_sealed_as_is_and_bounded_as_any() -> None:
    documents = [b"kept by the sender to seal again from"]
    manifest = make_manifest(documents)
    opened, _ = open_bytes(seal_bytes(documents, manifest=manifest, manifest_bytes=encode_manifest(manifest)))
    assert opened.manifest == manifest and opened.manifest_bytes == encode_manifest(manifest)
    with pytest.raises(SatchelError) as refused:
        seal_bytes(documents, manifest=manifest, manifest_bytes=b"\x00" * (DEFAULT_MAX_MANIFEST_LENGTH + 1))
    assert (refused.value.code, refused.value.field) == ("envelope.too_large", "manifest")
