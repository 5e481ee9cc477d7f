"""CsvTable read from a stream of chunks gives what it gives from the whole bytes, however they are cut."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.csv_rows import CsvEncodingError, CsvMalformed, CsvTable, RowError

# Line ends of every kind, BOMs, quotes, commas, NULs and bytes that are not UTF-8: the cases where cutting
# the bytes differently could change what is read.
_PIECES = st.sampled_from([b"a", b"b,c", b'"x\r\ny"', b'"', b",", b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf",
                           b"\xc3\xa9", b"\xff", b"\x00", b" ", b"id,name", b"PK\x03\x04", b"\xff\xfe"])  # fmt: skip


def _read(data: bytes | list[bytes]) -> list[object]:
    """Everything CsvTable gives for ``data``, or the error it raises, as comparable values."""
    try:
        table = CsvTable(data, file="x.csv")
        out: list[object] = [table.columns]
        for item in table:
            out.append(item if isinstance(item, RowError) else (item.line, item.values))
        return out
    except (CsvEncodingError, CsvMalformed) as exc:
        return [type(exc).__name__, exc.message]


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


@given(st.lists(_PIECES, max_size=40).map(b"".join), st.lists(st.integers(0, 200), max_size=12))
def test_chunks_read_as_the_whole_bytes(data: bytes, cuts: list[int]) -> None:
    assert _read(_cut(data, cuts)) == _read(data)


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_cr_at_the_end_of_a_chunk_waits_for_its_lf(size: int) -> None:
    data = b"id,name\r\n1,Ann\r\n2,Bo\r3,Cy\n"
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert _read(chunks) == _read(data)
    assert [row[0] for row in _read(chunks)[1:]] == [2, 3, 4]  # type: ignore[index]


def test_a_stream_is_refused_as_the_bytes_are() -> None:
    assert _read([b"P", b"K\x03", b"\x04rest"])[0] == "CsvMalformed"
    assert _read([b"\xff", b"\xfeid"])[0] == "CsvEncodingError"
    assert _read([]) == _read(b"") == ["CsvMalformed", "x.csv is empty; its first line must be the header"]
