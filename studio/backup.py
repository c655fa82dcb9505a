"""Backups: the database (pg_dump, custom format) and the media files, with a manifest that a
restore checks everything against.

A backup directory holds:

- ``database.dump``: ``pg_dump --format=custom`` of the configured database (embedded or a
  server), taken in the same snapshot the row counts were read in, so they agree exactly;
- ``media/``: a copy of MEDIA_ROOT (filesystem storage), or nothing for S3, whose objects
  stay in the bucket and are listed in the manifest (key, size, ETag);
- ``backup.json``: the row count of every table, the size and sha256 of every file (and of
  the dump), the tool and server versions.

A restore refuses a database that has tables, or a media directory that has files, unless
``force``; it checks the backup's own files first, then restores, then compares every
count and every checksum with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connections

from studio import freshness

FORMAT = 1
MANIFEST = "backup.json"
DUMP = "database.dump"
MEDIA = "media"
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class RestoreReport:
    tables: int = 0
    rows: int = 0
    files: int = 0
    mismatches: list[str] = field(default_factory=list)


# --- PostgreSQL tools -------------------------------------------------------------------------


def _pgserver_bin() -> Path | None:
    from importlib.util import find_spec

    # Located, not imported: importing pgserver has side effects (a lock directory).
    spec = find_spec("pgserver")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "pginstall" / "bin"
    return path if path.is_dir() else None


def _major(tool: str) -> int | None:
    try:
        out = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else None


def pg_tool(name: str, server_major: int) -> str:
    """The path of pg_dump / pg_restore fit for a server of this major version: the same major
    if there is one, else the lowest newer one. Looked for in STUDIO_PG_BIN, then the binaries
    inside the pgserver package (the embedded server's own), then PATH."""
    dirs = [os.environ.get("STUDIO_PG_BIN"), _pgserver_bin()]
    candidates = [str(Path(d) / name) for d in dirs if d and (Path(d) / name).exists()]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    versions = [(major, tool) for tool in candidates if (major := _major(tool)) is not None]
    fitting = sorted((m, t) for m, t in versions if m >= server_major)
    exact = [t for m, t in fitting if m == server_major]
    if exact:
        return exact[0]
    if fitting:
        return fitting[0][1]
    found = ", ".join(f"{t} ({m})" for m, t in versions) or "none"
    raise BackupError(
        f"no {name} for PostgreSQL {server_major} (found: {found}); install one or set "
        "STUDIO_PG_BIN to the directory that holds it"
    )


def _db_settings(alias: str) -> dict:
    return connections[alias].settings_dict


def _pg_env(alias: str) -> dict[str, str]:
    db = _db_settings(alias)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    pairs = {
        "PGHOST": db.get("HOST"),
        "PGPORT": db.get("PORT"),
        "PGUSER": db.get("USER"),
        "PGPASSWORD": db.get("PASSWORD"),
        "PGDATABASE": db.get("NAME"),
        "PGSSLMODE": (db.get("OPTIONS") or {}).get("sslmode"),
    }
    env.update({k: str(v) for k, v in pairs.items() if v})
    return env


def _connect(alias: str):
    import psycopg2

    params = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("server_side_binding", None)
    return psycopg2.connect(**params)


def _tables(cursor) -> list[str]:
    cursor.execute(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "AND schemaname NOT LIKE 'pg_toast%%' ORDER BY 1"
    )
    return [row[0] for row in cursor.fetchall()]


def _counts(cursor) -> dict[str, int]:
    counts = {}
    for table in _tables(cursor):
        cursor.execute(f"SELECT count(*) FROM {table}")  # names quoted by quote_ident
        counts[table] = cursor.fetchone()[0]
    return counts


def _server(cursor) -> tuple[int, str]:
    cursor.execute("SHOW server_version_num")
    number = int(cursor.fetchone()[0])
    cursor.execute("SHOW server_version")
    return number // 10000, cursor.fetchone()[0]


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


# --- Files --------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> tuple[int, str]:
    """Copy one file, hashing what was written; (size, sha256)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    shutil.copystat(source, target)
    return size, digest.hexdigest()


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _is_s3() -> bool:
    return str(settings.STORAGES["default"]["BACKEND"]).endswith("S3Storage")


def _s3_objects() -> dict[str, dict]:
    from django.core.files.storage import default_storage

    prefix = getattr(default_storage, "location", "") or ""
    bucket = default_storage.bucket
    objects = {}
    for obj in bucket.objects.filter(Prefix=f"{prefix}/" if prefix else ""):
        objects[obj.key] = {"size": obj.size, "etag": obj.e_tag.strip('"')}
    return objects


# --- Backup ------------------------------------------------------------------------------------


def backup_create(*, directory: Path, alias: str = "default") -> dict:
    """Write a backup into ``directory`` (new or empty); returns the manifest."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory}: not empty; back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    conn = _connect(alias)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cursor:
            major, version = _server(cursor)
            pg_dump = pg_tool("pg_dump", major)
            # pg_dump reads the very snapshot the counts were taken in: they cannot disagree.
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            counts = _counts(cursor)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={directory / DUMP}",
                ],
                _pg_env(alias),
                "pg_dump",
            )
    finally:
        conn.close()

    if _is_s3():
        media = {"storage": "s3", "objects": _s3_objects()}
    else:
        root = Path(settings.MEDIA_ROOT)
        files = {}
        for path in _files(root):
            rel = path.relative_to(root).as_posix()
            size, sha = _copy(path, directory / MEDIA / rel)
            files[rel] = {"size": size, "sha256": sha}
        media = {"storage": "filesystem", "files": files}

    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": {
            "name": _db_settings(alias)["NAME"],
            "server_version": version,
            "pg_dump": subprocess.run(
                [pg_dump, "--version"], capture_output=True, text=True
            ).stdout.strip(),
            "dump_sha256": _sha256(directory / DUMP),
            "dump_size": (directory / DUMP).stat().st_size,
            "tables": counts,
        },
        "media": media,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


# --- Restore ----------------------------------------------------------------------------------


def _load(directory: Path) -> dict:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except OSError as exc:
        raise BackupError(f"{directory}: no readable {MANIFEST} ({exc.strerror})") from None
    except ValueError as exc:
        raise BackupError(f"{directory / MANIFEST}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


def _check_backup(directory: Path, manifest: dict) -> None:
    """The backup's own files are whole before anything is touched."""
    dump = directory / DUMP
    if not dump.is_file() or _sha256(dump) != manifest["database"]["dump_sha256"]:
        raise BackupError(f"{dump}: missing or its checksum differs from {MANIFEST}")
    if manifest["media"]["storage"] == "filesystem":
        for rel, meta in manifest["media"]["files"].items():
            path = directory / MEDIA / rel
            if not path.is_file() or _sha256(path) != meta["sha256"]:
                raise BackupError(f"{path}: missing or its checksum differs from {MANIFEST}")


def backup_restore(
    *, directory: Path, force: bool = False, alias: str = "default"
) -> RestoreReport:
    """Restore ``directory`` into the configured database and media, then verify them."""
    directory = Path(directory)
    manifest = _load(directory)
    _check_backup(directory, manifest)
    filesystem = manifest["media"]["storage"] == "filesystem"
    if filesystem and _is_s3():
        raise BackupError("the backup holds files but this Studio stores media on S3")
    media_root = Path(settings.MEDIA_ROOT)
    existing_files = _files(media_root) if filesystem else []
    if existing_files and not force:
        raise BackupError(
            f"{media_root}: has {len(existing_files)} files; restore into an empty media "
            "directory or pass --force"
        )

    connections[alias].close()
    conn = _connect(alias)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            major, _ = _server(cursor)
            pg_restore = pg_tool("pg_restore", major)
            tables = _tables(cursor)
            if tables and not force:
                raise BackupError(
                    f"database {_db_settings(alias)['NAME']!r} has {len(tables)} tables; restore "
                    "into a fresh database or pass --force (which drops everything in it)"
                )
            if tables:
                cursor.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%%' "
                    "AND nspname <> 'information_schema'"
                )
                for (schema,) in cursor.fetchall():
                    cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
                cursor.execute("CREATE SCHEMA IF NOT EXISTS public")
    finally:
        conn.close()

    _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={_db_settings(alias)['NAME']}",
            str(directory / DUMP),
        ],
        _pg_env(alias),
        "pg_restore",
    )
    # Every process's kept tokens and search answers came from the database just replaced.
    freshness.forget_all()

    if filesystem:
        for rel in manifest["media"]["files"]:
            _copy(directory / MEDIA / rel, media_root / rel)
    return backup_verify(manifest=manifest, alias=alias)


def backup_verify(*, manifest: dict, alias: str = "default") -> RestoreReport:
    """Compare the live database and media with a manifest: every count, every file."""
    report = RestoreReport()
    conn = _connect(alias)
    try:
        with conn.cursor() as cursor:
            counts = _counts(cursor)
    finally:
        conn.close()
    for table, expected in manifest["database"]["tables"].items():
        got = counts.get(table)
        if got != expected:
            report.mismatches.append(f"table {table}: {got} rows, backup has {expected}")
        report.tables += 1
        report.rows += expected
    media = manifest["media"]
    if media["storage"] == "filesystem":
        root = Path(settings.MEDIA_ROOT)
        for rel, meta in media["files"].items():
            path = root / rel
            if not path.is_file() or _sha256(path) != meta["sha256"]:
                report.mismatches.append(f"file {rel}: missing or different")
            report.files += 1
    else:
        live = _s3_objects()
        for key, meta in media["objects"].items():
            if live.get(key) != meta:
                report.mismatches.append(f"object {key}: missing or different in the bucket")
            report.files += 1
    return report
