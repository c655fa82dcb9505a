"""`python manage.py restore DIR`: a backup into a fresh database and media directory."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `backup` into the configured database and media directory, "
        "then check every table's row count and every file's checksum against backup.json. "
        "Refuses a database with tables or a media directory with files unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--force",
            action="store_true",
            help="drop everything in the database and overwrite media files first",
        )
        parser.add_argument("--database", default="default")

    def handle(self, *args: object, **options: object) -> None:
        directory = Path(options["directory"])  # type: ignore[arg-type]
        try:
            report = backup_restore(
                directory=directory, force=bool(options["force"]), alias=str(options["database"])
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        if report.mismatches:
            raise CommandError(
                "restored, but it differs from the backup:\n  " + "\n  ".join(report.mismatches)
            )
        self.stdout.write(
            f"restored {directory}: {report.tables} tables, {report.rows} rows and "
            f"{report.files} files, all equal to the backup"
        )
