"""What the node reports while it reads or walks through long work."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from node.progress import CountingReader, ReadMeter


@given(data=st.binary(max_size=5000), size=st.integers(1, 700))
def test_a_counting_reader_passes_every_byte_through_and_reports_each_read(data: bytes, size: int) -> None:
    heard: list[tuple[int, int]] = []
    reader = CountingReader(io.BytesIO(data), len(data), lambda done, total: heard.append((done, total)))
    pieces = []
    while piece := reader.read(size):
        pieces.append(piece)
    assert b"".join(pieces) == data
    assert [done for done, _ in heard] == [min(len(data), size * (i + 1)) for i in range(len(pieces))]
    assert all(total == len(data) for _, total in heard)


@given(files=st.lists(st.binary(max_size=3000), max_size=4), chunk=st.integers(1, 700))
def test_a_read_meter_passes_every_byte_and_counts_across_files(files: list[bytes], chunk: int) -> None:
    heard: list[tuple[int, int]] = []
    total = sum(map(len, files))
    meter = ReadMeter(total, lambda done, whole: heard.append((done, whole)))
    meter.CHUNK = chunk
    read = [b"".join(meter.chunks(io.BytesIO(data))) for data in files]
    assert read == files
    assert [done for done, _ in heard] == sorted(done for done, _ in heard)
    assert all(whole == total for _, whole in heard) and (not heard or heard[-1][0] == total)


def test_a_progress_file_reports_the_position_reached_even_after_seeking_back(tmp_path) -> None:
    from node.progress import ProgressFile

    path = tmp_path / "envelope.bin"
    path.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    heard: list[tuple[int, int]] = []
    with ProgressFile(path, lambda done, total: heard.append((done, total))) as handle:
        assert handle.read(4096) == (bytes(range(256)) * 40)[:4096]
        handle.read(4096)
        handle.seek(0)  # a payload sent again starts over instead of counting past the end
        handle.read(10_000)
        handle.read(1000)
        assert handle.read(1000) == b""  # the end reports nothing more
    assert heard == [(4096, 10_240), (8192, 10_240), (10_000, 10_240), (10_240, 10_240)]
