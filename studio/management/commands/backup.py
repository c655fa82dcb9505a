"""`python manage.py backup DIR`: the database and the media files, with a manifest."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio.backup import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump, custom format) and the media files into DIR (new or "
        "empty), with backup.json: row counts per table and a checksum per file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--database", default="default")

    def handle(self, *args: object, **options: object) -> None:
        directory = Path(options["directory"])  # type: ignore[arg-type]
        try:
            manifest = backup_create(directory=directory, alias=str(options["database"]))
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        tables = manifest["database"]["tables"]
        media = manifest["media"]
        files = media.get("files") or media.get("objects") or {}
        self.stdout.write(
            f"backup in {directory}: {len(tables)} tables, {sum(tables.values())} rows, "
            f"{len(files)} {'files' if media['storage'] == 'filesystem' else 'S3 objects listed'}"
        )
