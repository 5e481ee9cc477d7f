"""CsvTable read from a stream of chunks gives what it gives from the whole bytes, however they are cut; and
RowErrors keeps the first bad rows, counting them all."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.csv_rows import MAX_LINE, CsvEncodingError, CsvMalformed, CsvTable, RowError, RowErrors

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


def test_a_line_without_end_is_refused_without_reading_the_rest() -> None:
    taken = []

    def stream():  # "id,name" then 64 MiB with no line break, in 64 KiB chunks
        yield b"id,name\n"
        for _ in range(1024):
            taken.append(1)
            yield b"x" * (64 << 10)

    message = "x.csv line 2 is longer than 1 MiB: it is not a CSV export"
    assert _read(list(_cut(b"id,name\n" + b"x" * (MAX_LINE + 1), [5000, 70000]))) == ["CsvMalformed", message]
    assert _read(b"id,name\n" + b"x" * (MAX_LINE + 1)) == ["CsvMalformed", message]
    assert _read(stream())[0:2] == ["CsvMalformed", message]  # type: ignore[arg-type]
    assert len(taken) <= 17  # 1 MiB and a chunk, not 64 MiB
    longest = b"x," * (MAX_LINE // 2 - 1) + b"x\n"  # exactly MAX_LINE bytes with its line break: still read
    [row] = _read(_cut(b"id,name\n" + longest, [100, 300_000]))[1:]
    assert isinstance(row, RowError) and row.line == 2 and "values but the header has 2 columns" in row.message


_FILES = ("users.csv", "demographics.csv", "enrollments.csv")
_MET = st.lists(st.tuples(st.sampled_from(_FILES), st.integers(1, 30), st.sampled_from(["a", "b"])), max_size=60)


def _by_file_line(error: RowError) -> tuple[int, int]:
    return _FILES.index(error.file), error.line


@given(_MET, st.none() | st.integers(0, 20))
def test_row_errors_keep_the_first_by_file_and_line_and_count_all(met: list[tuple], keep: int | None) -> None:
    # Met in any order (a student's record checks run after the last file is read), listed by file and line;
    # errors of the same row in the order they were met.
    errors = [RowError(file=f, line=line, field=None, message=m) for f, line, m in met]
    ordered, as_met = RowErrors(keep, order=_by_file_line), RowErrors(keep)
    ordered.extend(errors)
    for error in errors:
        as_met.append(error)
    wanted = sorted(errors, key=_by_file_line)  # stable: the same row's errors stay in the order met
    assert ordered.kept() == tuple(wanted if keep is None else wanted[:keep])
    assert as_met.kept() == tuple(errors if keep is None else errors[:keep])
    assert len(ordered) == len(as_met) == len(errors)


def test_a_quote_never_closed_is_named_as_such() -> None:
    # Each line is short, but the open quote on line 2 runs on through them all: one value past csv's limit.
    data = b'id,name\n1,"Ann\n' + b"".join(b"%d,Bo Brown and more text to fill the line\n" % i for i in range(4000))
    kind, message = _read(data)
    assert kind == "CsvMalformed"
    assert message == ("x.csv line 2 has a value longer than 131,072 characters: usually a double quote that is "
                       "never closed, which runs on to the end of the file")  # fmt: skip
