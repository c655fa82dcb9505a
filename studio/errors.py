"""The one error type for bad input: every message belongs to a named field.

Services raise ``InputError(field, message)`` (or several ``FieldError`` at once); forms put
each message on the field it names, the command line prints ``field: message`` lines and the
API turns them into ``errors: [{loc, msg}]``. Nothing parses a message to find its field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class FieldError:
    field: str  # "" when the problem is the input as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InputError(ValueError):
    """Bad user input. ``InputError("csv", "row 3, column 'color' is empty")``, or
    ``InputError([FieldError(...), ...])`` for every problem found at once."""

    def __init__(self, field_or_errors: str | Iterable[FieldError], message: str | None = None):
        if message is not None:
            self.errors = [FieldError(str(field_or_errors), message)]
        elif isinstance(field_or_errors, str):
            self.errors = [FieldError("", field_or_errors)]
        else:
            self.errors = list(field_or_errors)
        if not self.errors or not all(isinstance(e, FieldError) for e in self.errors):
            raise TypeError("InputError needs a field and a message, or FieldErrors")
        shown = [str(e) for e in self.errors[:MAX_ERRORS_SHOWN]]
        more = len(self.errors) - len(shown)
        super().__init__("; ".join(shown) + (f"; and {more} more problems" if more > 0 else ""))

    @property
    def fields(self) -> set[str]:
        return {e.field for e in self.errors}

    def messages(self) -> list[str]:
        """``field: message`` lines, for the command line and logs."""
        return [str(e) for e in self.errors]
