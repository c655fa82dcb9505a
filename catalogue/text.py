"""Accent folding for search, in the project's own code.

The embedded PostgreSQL has no ``unaccent`` extension, so indexed text and queries are folded
here, the same way on every server: "Dép Sài Gòn" and "dep sai gon" meet as "dep sai gon".
"""

from __future__ import annotations

import unicodedata

# Letters that are not a base letter plus combining marks, so NFKD leaves them alone.
_SPECIAL = str.maketrans(
    {
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ı": "i",
        "þ": "th",
        "Þ": "TH",
    }
)


def fold(text: str) -> str:
    """Lower-case ``text`` without accents or other marks on Latin letters; other scripts
    keep their letters (a mark is dropped only when a base letter carries it)."""
    decomposed = unicodedata.normalize("NFKD", (text or "").translate(_SPECIAL))
    kept, latin = [], False
    for ch in decomposed:
        if unicodedata.combining(ch):
            if not latin:
                kept.append(ch)  # a vowel sign of Devanagari, niqqud, ...: part of the word
            continue
        latin = ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")
        kept.append(ch)
    return unicodedata.normalize("NFC", "".join(kept)).lower()


# Spreadsheet programs run a cell that begins with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a ``'``. Every
    CSV the project writes (reports, manifests, schedules) goes through it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
