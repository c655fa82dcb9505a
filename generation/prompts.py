"""Parsing and validation of prompt templates and campaign CSVs (pure functions, no writes).

Every problem is reported with the row, the column and what is wrong, so a creative can fix
the spreadsheet without guessing. Validation runs completely before anything is created.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import string
from dataclasses import dataclass, field

from studio.errors import FieldError, InputError

_PLACEHOLDER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def template_placeholders(body: str, *, field_name: str = "template") -> list[str]:
    """The ``{placeholder}`` names in ``body``, in order of first use.

    ``{{`` and ``}}`` are literal braces. Positional fields, attribute/index access, format
    specs and conversions are refused: a template only substitutes CSV values.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        raise InputError(field_name, f"{exc} (write {{{{ or }}}} for a literal brace)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _PLACEHOLDER_NAME.match(name):
            raise InputError(
                field_name,
                f"placeholder {{{name}}} is not a column name "
                "(use letters, digits and underscores, e.g. {product_type})",
            )
        if spec or conversion:
            raise InputError(
                field_name,
                f"placeholder {{{name}}} has a format or conversion; use a plain {{name}}",
            )
        if name not in names:
            names.append(name)
    return names


def render(body: str, row: dict[str, str]) -> str:
    return body.format_map(row).strip()


# What a user can choose in the form (value -> label); "auto" is decode_csv's detection.
ENCODINGS: dict[str, str] = {
    "utf-8": "UTF-8",
    "utf-16": "UTF-16",
    "windows-1252": "Windows-1252",
    "latin-1": "Latin-1 (ISO-8859-1)",
    "mac-roman": "Mac Roman",
}
# Excel writes ";" where the decimal separator is a comma (much of Europe and Asia).
DELIMITERS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "|"}
# Enough records to tell a delimiter from punctuation in the values, without reading it all.
_SNIFF_RECORDS = 50


@dataclass
class ParsedCsv:
    columns: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    encoding: str = "utf-8"  # a key of ENCODINGS: what the bytes were read as
    delimiter: str = ","
    # Why the file was not read as UTF-8 when the encoding was detected, e.g.
    # "the file is not UTF-8: line 5, byte 205".
    encoding_note: str = ""

    @property
    def reading(self) -> str:
        """How the file was read, in words: ``Read as UTF-8, comma-separated.``"""
        encoding = ENCODINGS.get(self.encoding, self.encoding)
        if self.encoding_note:
            encoding += f" ({self.encoding_note})"
        return f"Read as {encoding}, {DELIMITERS[self.delimiter]}-separated."


def _line_of(data: bytes, position: int, codec: str) -> int:
    return data[:position].decode(codec, errors="replace").count("\n") + 1


def decode_csv(data: bytes, encoding: str = "auto") -> tuple[str, str, str]:
    """The text of a CSV file, the encoding it was read as (a key of ENCODINGS) and, when
    detection settled on something other than UTF-8, why.

    ``auto`` reads a byte-order mark (UTF-8 or UTF-16) as the file says; else the file is
    UTF-8 if it decodes as UTF-8 (so UTF-8 always wins when valid: a legacy file of accented
    text almost never does), else Windows-1252, which also reads Latin-1 text. Mac Roman
    cannot be told from Windows-1252 by its bytes: it has to be chosen.
    """
    if data.startswith(b"PK\x03\x04"):
        raise InputError(
            "csv",
            "this is an Excel workbook (.xlsx), not a CSV; in Excel use Save As and "
            "choose CSV UTF-8",
        )
    if encoding == "auto":
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8"
        else:
            try:
                return data.decode("utf-8"), "utf-8", ""
            except UnicodeDecodeError as exc:
                first = exc.start
            where = f"line {_line_of(data, first, 'utf-8')}, byte {first}"
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError as exc:
                if exc.start == first:
                    problem = f"{where} (0x{data[first]:02X}) is neither UTF-8 nor Windows-1252"
                else:
                    problem = (
                        f"{where} is not valid UTF-8, and line "
                        f"{_line_of(data, exc.start, 'cp1252')}, byte {exc.start} "
                        f"(0x{data[exc.start]:02X}) is not Windows-1252 either"
                    )
                raise InputError(
                    "csv",
                    f"{problem}; choose its encoding under Encoding, or save the file as UTF-8",
                ) from None
            seen = data[first : first + 1].decode("cp1252")
            return text, "windows-1252", f"the file is not UTF-8: {where} is {seen!r}"
    if encoding not in ENCODINGS:
        raise InputError("csv_encoding", f"{encoding!r} is not one of auto, {', '.join(ENCODINGS)}")
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start, codec)
        raise InputError(
            "csv",
            f"line {line} is not valid {ENCODINGS[encoding]} (byte {exc.start}); choose "
            "its encoding under Encoding, or save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff"), encoding, ""


def detect_delimiter(text: str) -> str:
    """The delimiter (a key of DELIMITERS) that splits the header into the most columns the
    rows agree with; a comma when none splits it."""
    best, best_key = ",", None
    for order, delimiter in enumerate(DELIMITERS):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            records = [
                record
                for record in itertools.islice(reader, _SNIFF_RECORDS)
                if any(cell.strip() for cell in record)
            ]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width, body = len(records[0]), records[1:]
        agreeing = sum(len(record) == width for record in body) / len(body) if body else 1.0
        key = (agreeing, width, -order)
        if best_key is None or key > best_key:
            best, best_key = delimiter, key
    return best


def parse_csv(data: bytes, *, max_rows: int, encoding: str = "auto") -> ParsedCsv:
    """Decode and parse a campaign CSV (header row first).

    The encoding is detected unless given (see decode_csv), the delimiter is detected among
    DELIMITERS; both are recorded on the result so the user can be told.
    """
    text, encoding, encoding_note = decode_csv(data, encoding)
    if "\x00" in text:
        raise InputError(
            "csv",
            "the file contains NUL bytes; is it really a CSV? (a UTF-16 file without a "
            "byte-order mark needs its encoding chosen)",
        )
    delimiter = detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    separated = "" if delimiter == "," else f", read as {DELIMITERS[delimiter]}-separated"
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise InputError("csv", "the file is empty; the first line must name the columns")
        columns = [cell.strip() for cell in header]
        errors: list[FieldError] = []
        for position, name in enumerate(columns, start=1):
            if not name:
                errors.append(FieldError("csv", f"column {position} in the header has no name"))
        seen: set[str] = set()
        for name in columns:
            if name and name in seen:
                errors.append(FieldError("csv", f"column {name!r} appears twice in the header"))
            seen.add(name)
        if errors:
            raise InputError(errors)
        rows: list[dict[str, str]] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # blank lines are not rows
            row_number = len(rows) + 1
            if len(record) != len(columns):
                errors.append(
                    FieldError(
                        "csv",
                        f"row {row_number} (line {reader.line_num}) has {len(record)} values, "
                        f"the header has {len(columns)} columns{separated}",
                    )
                )
            rows.append(
                {
                    name: (record[i].strip() if i < len(record) else "")
                    for i, name in enumerate(columns)
                }
            )
            if len(rows) > max_rows:
                raise InputError(
                    "csv",
                    f"more than {max_rows} rows (the configured limit, "
                    "STUDIO_MAX_CSV_ROWS); split the file into several campaigns",
                )
    except csv.Error as exc:
        raise InputError("csv", f"line {reader.line_num}: {exc}") from None
    if errors:
        raise InputError(errors)
    if not rows:
        raise InputError("csv", "the file has a header but no rows")
    return ParsedCsv(
        columns=columns,
        rows=rows,
        encoding=encoding,
        delimiter=delimiter,
        encoding_note=encoding_note,
    )


def check_rows_fit_template(parsed: ParsedCsv, placeholders: list[str]) -> None:
    missing = [name for name in placeholders if name not in parsed.columns]
    if missing and len(parsed.columns) == 1:
        # One error, not one per placeholder: the header was not split at all.
        (only,) = parsed.columns
        looks = [name for mark, name in DELIMITERS.items() if mark in only]
        if looks:
            raise InputError(
                "csv",
                f"the header is one column, {only!r}; it looks {looks[0]}-separated but "
                "could not be split that way (check the quotes in the first line)",
            )
    if missing:
        raise InputError(
            [
                FieldError(
                    "csv",
                    f"column {name!r} is missing; the template needs {{{name}}} "
                    f"(columns present: {', '.join(parsed.columns)})",
                )
                for name in missing
            ]
        )
    errors = [
        FieldError("csv", f"row {number}, column {name!r} is empty; the template needs {{{name}}}")
        for number, row in enumerate(parsed.rows, start=1)
        for name in placeholders
        if not row.get(name, "").strip()
    ]
    if errors:
        raise InputError(errors)
