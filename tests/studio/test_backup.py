"""`backup` and `restore`: a round trip into a fresh database, every row and file checked."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from generation.models import Item
from tests.conftest import route_items

REPO = Path(__file__).resolve().parents[2]


def _admin_connection():
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params["dbname"] = "postgres"
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn


@pytest.fixture
def fresh_database():
    """An empty database beside the test one, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_restore"
    admin = _admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _counts(database: str) -> dict[str, int]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params["dbname"] = database
    with psycopg2.connect(**params) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        tables = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _restore(target_db: str, media: Path, backup: Path, *extra: str):
    url = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{url['USER']}@{url['HOST']}:{url['PORT'] or 5432}/{target_db}",
        STUDIO_MEDIA_ROOT=str(media),
    )
    return subprocess.run(
        [sys.executable, "manage.py", "restore", str(backup), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def studio_data(transactional_db, campaign, reviewer, settings):
    """A campaign with images on disk, scored items and a review task: rows in many tables."""
    route_items(campaign, to="review", count=2)
    route_items(campaign, to="approved", count=1)
    assert len(_tree(Path(settings.MEDIA_ROOT))) >= 3
    return campaign


def test_a_backup_restores_into_a_fresh_database_with_every_row_and_file_equal(
    studio_data, fresh_database, tmp_path, settings
):
    backup = tmp_path / "backup"
    call_command("backup", str(backup))
    manifest = json.loads((backup / "backup.json").read_text())
    source_counts = _counts(connection.settings_dict["NAME"])
    source_files = _tree(Path(settings.MEDIA_ROOT))
    assert manifest["database"]["tables"]["public.generation_item"] == Item.objects.count()
    assert {k: v["sha256"] for k, v in manifest["media"]["files"].items()} == source_files

    restored_media = tmp_path / "restored-media"
    result = _restore(fresh_database, restored_media, backup)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all equal to the backup" in result.stdout

    # Checked again here, independently of restore's own verification.
    assert _counts(fresh_database) == source_counts
    assert sum(source_counts.values()) > 50
    assert _tree(restored_media) == source_files

    # A second restore into the now full database is refused; nothing is touched.
    again = _restore(fresh_database, tmp_path / "other-media", backup)
    assert again.returncode != 0
    assert "restore into a fresh database or pass --force" in again.stderr
    assert not (tmp_path / "other-media").exists()


def test_a_restore_refuses_a_damaged_backup_before_touching_anything(
    studio_data, fresh_database, tmp_path
):
    backup = tmp_path / "backup"
    call_command("backup", str(backup))
    manifest = json.loads((backup / "backup.json").read_text())
    damaged = backup / "media" / next(iter(manifest["media"]["files"]))
    damaged.write_bytes(b"not the image")
    result = _restore(fresh_database, tmp_path / "restored-media", backup)
    assert result.returncode != 0
    assert "checksum differs" in result.stderr
    assert _counts(fresh_database) == {}


def test_a_backup_refuses_a_directory_that_is_not_empty(db, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        call_command("backup", str(tmp_path))


def test_a_restore_names_a_directory_without_a_manifest(db, tmp_path):
    with pytest.raises(CommandError, match="no readable backup.json"):
        call_command("restore", str(tmp_path))


@pytest.mark.slow
def test_a_backup_restores_into_a_fresh_embedded_server(studio_data, tmp_path, settings):
    """From the configured PostgreSQL into a new embedded one (pgserver, its own pg_restore)."""
    backup = tmp_path / "backup"
    call_command("backup", str(backup))
    source_counts = _counts(connection.settings_dict["NAME"])
    var = Path(tempfile.mkdtemp(prefix="studio-restore-"))  # short: the socket lives in here
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "STUDIO_EMBEDDED"}
    }
    env.update(STUDIO_VAR_DIR=str(var), STUDIO_MEDIA_ROOT=str(var / "media"))
    try:
        code = (
            "import json, sys; from django.core.management import call_command; "
            "from studio.backup import _connect, _counts; "
            f"call_command('restore', {str(backup)!r}); "
            "c = _connect('default'); cur = c.cursor(); "
            "print(json.dumps(_counts(cur)))"
        )
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "all equal to the backup" in result.stdout
        restored = json.loads(result.stdout.strip().splitlines()[-1])
        assert {k.removeprefix("public."): v for k, v in restored.items()} == source_counts
        assert _tree(var / "media") == _tree(Path(settings.MEDIA_ROOT))
    finally:
        shutil.rmtree(var, ignore_errors=True)


@pytest.fixture
def s3_storage(settings):
    """Default storage on moto's S3 server (in a thread, on a free port) for this test."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {
        "bucket_name": "studio-backup-test",
        "endpoint_url": f"http://{host}:{port}",
        "region_name": "us-east-1",
        "access_key": "k",
        "secret_key": "s",
        "location": "media",
    }
    boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    ).create_bucket(Bucket=options["bucket_name"])
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    yield
    server.stop()


def test_on_s3_the_backup_lists_every_object_and_a_restore_check_finds_a_missing_one(
    db, s3_storage, tmp_path
):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from studio.backup import backup_create, backup_verify

    names = [default_storage.save(f"items/{n}.png", ContentFile(b"png" * n)) for n in (1, 2)]
    manifest = backup_create(directory=tmp_path / "backup")
    objects = manifest["media"]["objects"]
    assert manifest["media"]["storage"] == "s3"
    assert sorted(objects) == [f"media/{name}" for name in names]
    assert [objects[f"media/{name}"]["size"] for name in names] == [3, 6]
    assert not (tmp_path / "backup" / "media").exists()  # objects stay in the bucket
    assert backup_verify(manifest=manifest).mismatches == []

    default_storage.delete(names[0])
    assert backup_verify(manifest=manifest).mismatches == [
        f"object media/{names[0]}: missing or different in the bucket"
    ]
