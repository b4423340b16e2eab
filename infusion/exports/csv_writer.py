"""Spreadsheet-safe CSV: the one place that neutralises cells and writes a CSV file.

Every CSV Chairside hands out (quality exports, the audit log search, any page's
download) should go through here, so formula injection is guarded in one place:
a text cell starting with a formula character gets a leading single quote
(OWASP CSV injection), numbers stay numbers so negatives still sort and sum.
Files are UTF-8 with a BOM (Excel otherwise guesses the code page) and CRLF line
ends (RFC 4180). Nothing here knows about datasets or the database.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import IO, Any, cast

from infusion.errors import ChairsideError

#: OWASP CSV injection: a cell starting with one of these is read as a formula by spreadsheets.
#: Line feed is added to the OWASP list: some spreadsheets skip a leading line break before evaluating.
DANGEROUS_LEADING = ("=", "+", "-", "@", "\t", "\r", "\n")
BOM = "\ufeff"
LINE_END = "\r\n"


def neutralise(text: str) -> str:
    """OWASP CSV-injection guard: a leading single quote makes a formula-looking cell inert text."""
    return "'" + text if text[:1] in DANGEROUS_LEADING else text


def format_cell(value: Any) -> str | int | float:
    """One value as written to the CSV; numbers pass through untouched so negatives stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return neutralise(str(value))


def cell_formatter(column_type: str) -> Callable[[Any], Any]:
    """`format_cell` specialised by a schema column type: the per-cell cost dominates large exports.

    Each fast path handles the expected Python type and falls back to `format_cell`
    for anything else, so the output is the same as `format_cell`'s.
    """
    if column_type in ("integer", "number"):
        return lambda v: v if type(v) in (int, float) else format_cell(v)
    if column_type == "boolean":
        return lambda v: "" if v is None else "true" if v is True else "false" if v is False else format_cell(v)
    if column_type == "datetime":
        return lambda v: v.isoformat(timespec="seconds") if type(v) is datetime else format_cell(v)
    return lambda v: neutralise(v) if type(v) is str else format_cell(v)


def text_sink(out: IO[bytes] | IO[str]) -> Callable[[str], None]:
    """A function writing text to `out` as UTF-8, whether `out` is a binary or a text stream.

    A text stream in another encoding is refused before anything is written; a
    utf-8-sig stream writes the BOM itself, so ours is dropped.
    """
    if isinstance(out, io.TextIOBase):
        text_out = cast(IO[str], out)
        encoding = getattr(out, "encoding", None)
        name = codecs.lookup(encoding).name if encoding else "utf-8"
        if name not in ("utf-8", "utf-8-sig"):
            raise ChairsideError(
                f"The CSV is UTF-8; open the output in binary mode or with encoding='utf-8' (got {encoding})."
            )
        skip_bom = name == "utf-8-sig"  # that codec writes the BOM itself

        def emit_text(text: str) -> None:
            text_out.write(text.removeprefix(BOM) if skip_bom else text)

        return emit_text

    binary_out = cast(IO[bytes], out)

    def emit_bytes(text: str) -> None:
        binary_out.write(text.encode("utf-8"))

    return emit_bytes


class CsvSink:
    """A CSV being written to a stream: BOM and header on creation, then rows in batches.

    Cells must already be formatted (`format_cell` or a `cell_formatter`); each
    batch is encoded and written in one call, so a streaming export holds one
    batch in memory at a time.
    """

    def __init__(self, out: IO[bytes] | IO[str], header: Sequence[str]) -> None:
        self._emit = text_sink(out)
        self._binary = None if isinstance(out, io.TextIOBase) else cast(IO[bytes], out)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator=LINE_END)
        self._buffer.write(BOM)
        self._writer.writerow(header)
        self._flush()

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows(rows)
        self._flush()

    def write_lines(self, text: str) -> None:
        """Rows already written as CSV lines (CRLF-terminated), e.g. by the database."""
        self._emit(text)

    def write_encoded(self, data: bytes) -> None:
        """Rows already written as UTF-8 CSV lines (CRLF-terminated)."""
        if self._binary is not None:
            self._binary.write(data)
        else:
            self._emit(data.decode("utf-8"))

    def _flush(self) -> None:
        self._emit(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A whole small CSV (a page's download) as bytes, every cell through `format_cell`."""
    out = io.BytesIO()
    CsvSink(out, header).write_rows([format_cell(v) for v in row] for row in rows)
    return out.getvalue()
