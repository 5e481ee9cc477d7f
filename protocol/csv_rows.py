"""Row-by-row reading of a district's CSV files: bytes in (whole, or a stream of chunks read from a file of
any size), header-keyed rows and row errors out.

Shared by the OneRoster and assessment parsers. What makes a whole file unusable (not UTF-8, not CSV,
no header, a required column missing) raises; what is wrong with one row becomes a :class:`RowError`
so a district sees every problem in one pass. Files are decoded line by line so a tens-of-megabytes
export is never held as a second full-size string, and each row knows the physical line it starts on.
Messages name files, lines, columns and ids, never other cell values: those are children's data.
"""

from __future__ import annotations

import csv
import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Generic, TypeVar

from protocol.errors import InvalidInput, SatchelError

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ZIP_MAGIC = b"PK\x03\x04"  # .xlsx workbooks are zips
# A line ends at CRLF, LF or a lone CR (old Mac exports); the csv module then only ever sees one line.
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
# Longer than any export's line (a field alone may not pass 128 KiB, the csv module's limit): a file with
# such a line is not a CSV export, and a stream is not read whole looking for the end of it.
MAX_LINE = 1 << 20
# Bad rows kept to be listed, the first of them by line; the rest are counted. More than anyone reads, and a
# file whose every row is bad (a date column the other way round, the wrong export) does not hold an error
# per row: 600,000 of them took 137 MB more.
KEEP_ROW_ERRORS = 1000
_SAVE_AS_UTF8 = "Save the file as UTF-8 (in Excel: File > Save As > 'CSV UTF-8 (Comma delimited)')."


class CsvEncodingError(InvalidInput):
    """A CSV file is not UTF-8 text."""

    code = "csv.encoding"
    default_hint = _SAVE_AS_UTF8


class CsvMalformed(InvalidInput):
    """A CSV file cannot be read as CSV (unbalanced quotes, no header, duplicate columns, a workbook)."""

    code = "csv.malformed"
    default_hint = "Export the file again from the student information system as a comma-separated CSV."


class CsvMissingColumn(InvalidInput):
    """A CSV file's header lacks a column the importer needs."""

    code = "csv.missing_column"


class RowsInvalid(SatchelError):
    """Some rows of a district's file are invalid, so nothing of it was imported; ``rows`` lists them, or the
    first of them when ``count``, how many there are, is more. Each kind of file has its own subclass, with
    its code."""

    def __init__(self, message: str, rows: tuple[RowError, ...], *, count: int | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.rows = rows
        self.count = len(rows) if count is None else count


@dataclass(frozen=True, slots=True, kw_only=True)
class RowError:
    """One bad row: ``line`` is the 1-based physical line the row starts on (the header is line 1)."""

    file: str
    line: int
    field: str | None
    message: str

    def __post_init__(self) -> None:
        if not self.file or not isinstance(self.line, int) or self.line < 1 or not self.message:
            raise InvalidInput("a row error needs a file, a line number of at least 1 and a message")

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str | int | None]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


E = TypeVar("E")


class RowErrors(Generic[E]):
    """Bad rows as they are met: every one counted (``len``), the first ``keep`` kept (``None``: all), first
    by ``order`` when given (errors are not always met in the order they are listed in), else as met."""

    def __init__(self, keep: int | None = KEEP_ROW_ERRORS, order: Callable[[E], tuple[int, ...]] | None = None):
        self._keep, self._order = keep, order or (lambda _: ())
        # The kept errors as a heap whose top is the last of them, dropped when an earlier one comes.
        self._heap: list[tuple[tuple[int, ...], int, E]] = []
        self._count = 0

    def append(self, error: E) -> None:
        self._count += 1
        item = (tuple(-k for k in self._order(error)), -self._count, error)  # the earlier, the larger
        if self._keep is None or len(self._heap) < self._keep:
            heapq.heappush(self._heap, item)
        elif self._heap and item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def extend(self, errors: Iterable[E]) -> None:
        for error in errors:
            self.append(error)

    def __len__(self) -> int:
        return self._count

    def kept(self) -> tuple[E, ...]:
        """The errors kept, in order."""
        return tuple(error for _, _, error in sorted(self._heap, key=lambda item: item[:2], reverse=True))


@dataclass(frozen=True, slots=True)
class Row:
    """One data row, values stripped and keyed by lower-cased header name."""

    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        """The value of ``column`` (lower-case), or "" when the file has no such column."""
        return self.values.get(column, "")


class CsvTable:
    """A CSV file whose header has been read and checked; iterate it for :class:`Row` or :class:`RowError`."""

    def __init__(
        self, data: bytes | Iterable[bytes], *, file: str, required: Iterable[str] = (), semicolons: bool = False
    ) -> None:
        """``semicolons``: a file whose first line holds semicolons and no comma is read as separated by them, as
        Excel saves "CSV" where the decimal mark is a comma (much of Europe): for files a person fills in a
        spreadsheet, not for exports whose format says commas."""
        self.file = file
        self._lines = _LineSource(data, file)
        first = self._lines.peek() if semicolons else None
        delimiter = ";" if first is not None and ";" in first and "," not in first else ","
        self._reader = csv.reader(self._lines, strict=True, delimiter=delimiter)
        header = self._next_record()
        if header is None:
            raise CsvMalformed(
                f"{file} is empty; its first line must be the header", hint="Export the file again."
            )
        _line, cells = header
        self.columns: tuple[str, ...] = tuple(cell.strip().lower() for cell in cells)
        seen: set[str] = set()
        for name in self.columns:
            if name and name in seen:
                raise CsvMalformed(f"{file} has two columns named {name!r}", field=name)
            seen.add(name)
        missing = [name for name in required if name.lower() not in seen]
        if missing:
            raise CsvMissingColumn(
                f"{file} has no {', '.join(missing)} column" + ("s" if len(missing) > 1 else ""),
                field=missing[0],
                hint=f"Add the column(s) to the first line of {file}; names are not case-sensitive.",
            )

    def has(self, column: str) -> bool:
        return column in self.columns

    def __iter__(self) -> Iterator[Row | RowError]:
        width = len(self.columns)
        while (record := self._next_record()) is not None:
            line, cells = record
            # Spreadsheets often pad rows with empty trailing cells; only real extra values are an error.
            if len(cells) > width and not any(cell.strip() for cell in cells[width:]):
                cells = cells[:width]
            if len(cells) != width:
                yield RowError(
                    file=self.file,
                    line=line,
                    field=None,
                    message=f"row has {len(cells)} values but the header has {width} columns "
                    "(check for an unquoted comma)",
                )
                continue
            yield Row(
                line, {name: cell.strip() for name, cell in zip(self.columns, cells, strict=True) if name}
            )

    def _next_record(self) -> tuple[int, list[str]] | None:
        """The next non-blank record and the physical line it starts on, or None at the end."""
        while True:
            start = self._lines.count + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                if "field limit" in str(exc):  # csv's own bound (128 KiB); no Satchel value is near it
                    raise CsvMalformed(
                        f"{self.file} line {start} has a value longer than {csv.field_size_limit():,} characters: "
                        "usually a double quote that is never closed, which runs on to the end of the file",
                        hint="Look for a stray double quote on that line; quote a value that holds one.",
                    ) from None
                raise CsvMalformed(
                    f"{self.file} line {start} is not valid CSV ({exc}); look for a stray double quote",
                    hint="Quote any value that contains a comma, a double quote or a line break.",
                ) from None
            if cells and any(cells):
                return start, cells


class _LineSource:
    """Iterator of decoded lines that counts them, so rows can report where they start."""

    def __init__(self, data: bytes | Iterable[bytes], file: str) -> None:
        if isinstance(data, bytes | bytearray | memoryview):
            head, rest = bytes(data), None
        else:
            chunks = iter(data)
            head = b""
            while len(head) < len(_ZIP_MAGIC) and (chunk := next(chunks, None)) is not None:
                head += chunk
            rest = chunks
        if head.startswith(_UTF16_BOMS):
            raise CsvEncodingError(f"{file} is UTF-16 text, not UTF-8")
        if head.startswith(_ZIP_MAGIC):
            raise CsvMalformed(
                f"{file} is a zip or an Excel workbook, not a CSV file",
                hint="Open it in the spreadsheet program and save it as 'CSV UTF-8 (Comma delimited)'.",
            )
        start = len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0
        self._matches: Iterator[bytes] = (
            (m.group() for m in _LINE.finditer(head, start)) if rest is None else _split_lines(head[start:], rest)
        )
        self._file = file
        self.count = 0
        self._peeked: str | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def peek(self) -> str | None:
        """The next line without taking it (None at the end)."""
        if self._peeked is None:
            try:
                self._peeked = self._decoded(next(self._matches), self.count + 1)
            except StopIteration:
                return None
        return self._peeked

    def __next__(self) -> str:
        if self._peeked is not None:
            line, self._peeked = self._peeked, None
            self.count += 1
            return line
        raw = next(self._matches)
        self.count += 1
        return self._decoded(raw, self.count)

    def _decoded(self, raw: bytes, number: int) -> str:
        if len(raw) > MAX_LINE:
            raise CsvMalformed(
                f"{self._file} line {number} is longer than {MAX_LINE >> 20} MiB: it is not a CSV export"
            )
        if b"\x00" in raw:
            # NUL has no business in a text export; it means UTF-16 without a BOM or a binary file.
            raise CsvEncodingError(f"{self._file} line {number} contains NUL bytes; it is not UTF-8 text")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CsvEncodingError(
                f"{self._file} line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x})"
            ) from None


def _split_lines(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of ``head`` followed by ``chunks``, as ``_LINE`` splits the whole: a line may span chunks,
    and a CR that ends a chunk waits for the next one, which may start with its LF."""
    pending: list[bytes] = []
    size = 0
    for chunk in chain([head], chunks):
        usable = len(chunk) - 1 if chunk.endswith(b"\r") else len(chunk)
        cut = max(chunk.rfind(b"\n", 0, usable), chunk.rfind(b"\r", 0, usable))
        if cut < 0:
            pending.append(chunk)
            size += len(chunk)
            if size > MAX_LINE:  # no end in sight: the reader refuses it (see MAX_LINE) without the rest
                yield b"".join(pending)
                return
            continue
        pending.append(chunk[: cut + 1])
        yield from (m.group() for m in _LINE.finditer(b"".join(pending)))
        pending = [chunk[cut + 1 :]]
        size = len(pending[0])
    yield from (m.group() for m in _LINE.finditer(b"".join(pending)))
