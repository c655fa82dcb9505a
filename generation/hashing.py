"""Content hashes for model and LoRA files (the registry pins versions by sha256)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from studio.errors import InputError

_CHUNK = 1024 * 1024
# A full sha256, or the 10-digit short hash AUTOMATIC1111 shows for a checkpoint.
_SHA256 = re.compile(r"[0-9a-f]{64}|[0-9a-f]{10}")


def check_sha256(value: str, *, field: str = "sha256") -> str:
    """A pinned hash as stored: stripped and lowercased; "" stays "" (nothing pinned).

    Raises InputError(field, ...) unless it is 64 hex digits or A1111's 10-digit short hash.
    """
    value = value.strip().lower()
    if value and not _SHA256.fullmatch(value):
        raise InputError(field, "give the 64 hex digits (or AUTOMATIC1111's 10-digit short hash)")
    return value


def _skipped(rel: Path) -> bool:
    # Hub/download caches and lock files change without the weights changing; hashing them
    # would make a model "change" every time a tool touches its folder.
    return any(part.startswith(".") for part in rel.parts) or rel.suffix == ".lock"


def iter_files(path: Path) -> list[Path]:
    """The files of a directory that take part in its hash, sorted by relative POSIX path."""
    files = [p for p in path.rglob("*") if p.is_file() and not _skipped(p.relative_to(path))]
    return sorted(files, key=lambda p: p.relative_to(path).as_posix())


def _update_from_file(digest: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files (names and contents) in a stable order.

    For a directory every file contributes its relative POSIX path, its size and its bytes, so
    renaming or moving a file changes the hash as well as editing one, and the framing (size
    before contents) keeps two different layouts from hashing the same.
    """
    path = Path(path)
    if path.is_file():
        digest = hashlib.sha256()
        _update_from_file(digest, path)
        return digest.hexdigest()
    if not path.is_dir():
        raise FileNotFoundError(f"No such file or directory: {path}")
    digest = hashlib.sha256()
    for file in iter_files(path):
        rel = file.relative_to(path).as_posix().encode("utf-8")
        digest.update(len(rel).to_bytes(8, "big"))
        digest.update(rel)
        digest.update(file.stat().st_size.to_bytes(8, "big"))
        _update_from_file(digest, file)
    return digest.hexdigest()
