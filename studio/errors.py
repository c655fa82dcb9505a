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


# Bidirectional embedding, override and isolate controls: invisible, and able to make a name
# read differently from what it is ("Trojan Source"). Right-to-left text itself is fine.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot name something people pick from a list, or None when it can: it
    must show at least one visible character and carry no control or bidi override
    characters. Any script, emoji and joiners (ZWJ in an emoji sequence) are fine."""
    import unicodedata

    if any(ch in _BIDI_CONTROLS for ch in text):
        return "remove the invisible right-to-left/left-to-right control characters"
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        return "remove the control characters (line breaks, tabs, NUL)"
    if not any(unicodedata.category(ch)[0] not in "CZ" for ch in text):
        return "use at least one visible character"
    return None
