"""Parsing and validation of prompt templates and campaign CSVs (pure functions, no writes).

Every problem is reported with the row, the column and what is wrong, so a creative can fix
the spreadsheet without guessing. Validation runs completely before anything is created.
"""

from __future__ import annotations

import csv
import io
import re
import string
from dataclasses import dataclass, field

_PLACEHOLDER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ERRORS_SHOWN = 20


class InputError(Exception):
    """Bad user input; ``errors`` is a list of messages, each naming its field/row/column."""

    def __init__(self, errors: list[str] | str):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        shown = self.errors[:MAX_ERRORS_SHOWN]
        more = len(self.errors) - len(shown)
        message = "; ".join(shown) + (f"; and {more} more problems" if more > 0 else "")
        super().__init__(message)


def template_placeholders(body: str, *, field_name: str = "template") -> list[str]:
    """The ``{placeholder}`` names in ``body``, in order of first use.

    ``{{`` and ``}}`` are literal braces. Positional fields, attribute/index access, format
    specs and conversions are refused: a template only substitutes CSV values.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        raise InputError(f"{field_name}: {exc} (write {{{{ or }}}} for a literal brace)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _PLACEHOLDER_NAME.match(name):
            raise InputError(
                f"{field_name}: placeholder {{{name}}} is not a column name "
                "(use letters, digits and underscores, e.g. {product_type})"
            )
        if spec or conversion:
            raise InputError(
                f"{field_name}: placeholder {{{name}}} has a format or conversion; "
                "use a plain {name}"
            )
        if name not in names:
            names.append(name)
    return names


def render(body: str, row: dict[str, str]) -> str:
    return body.format_map(row).strip()


@dataclass
class ParsedCsv:
    columns: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)


def parse_csv(data: bytes, *, max_rows: int) -> ParsedCsv:
    """Decode and parse a campaign CSV (UTF-8, header row first)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"csv: line {line} is not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from None
    if "\x00" in text:
        raise InputError("csv: the file contains NUL bytes; is it really a CSV?")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise InputError("csv: the file is empty; the first line must name the columns")
        columns = [cell.strip() for cell in header]
        errors: list[str] = []
        for position, name in enumerate(columns, start=1):
            if not name:
                errors.append(f"csv: column {position} in the header has no name")
        seen: set[str] = set()
        for name in columns:
            if name and name in seen:
                errors.append(f"csv: column {name!r} appears twice in the header")
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
                    f"csv: row {row_number} (line {reader.line_num}) has {len(record)} values, "
                    f"the header has {len(columns)} columns"
                )
            rows.append(
                {
                    name: (record[i].strip() if i < len(record) else "")
                    for i, name in enumerate(columns)
                }
            )
            if len(rows) > max_rows:
                raise InputError(
                    f"csv: more than {max_rows} rows (the configured limit, "
                    "STUDIO_MAX_CSV_ROWS); split the file into several campaigns"
                )
    except csv.Error as exc:
        raise InputError(f"csv: line {reader.line_num}: {exc}") from None
    if errors:
        raise InputError(errors)
    if not rows:
        raise InputError("csv: the file has a header but no rows")
    return ParsedCsv(columns=columns, rows=rows)


def check_rows_fit_template(parsed: ParsedCsv, placeholders: list[str]) -> None:
    missing = [name for name in placeholders if name not in parsed.columns]
    if missing:
        raise InputError(
            [
                f"csv: column {name!r} is missing; the template needs {{{name}}} "
                f"(columns present: {', '.join(parsed.columns)})"
                for name in missing
            ]
        )
    errors = [
        f"csv: row {number}, column {name!r} is empty; the template needs {{{name}}}"
        for number, row in enumerate(parsed.rows, start=1)
        for name in placeholders
        if not row.get(name, "").strip()
    ]
    if errors:
        raise InputError(errors)
