"""Build a catalogue export in this process and write the zip to a file: the same export as
the page's (a row in the exports list, manifests, left-out assets), without the queue."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from catalogue.delivery.exports import export_build, export_create
from catalogue.models import Export
from studio.errors import InputError


class Command(BaseCommand):
    help = (
        "Export a campaign's published images, or every result of a catalogue search, as a zip "
        "of renditions with manifest.json and manifest.csv. Exits 2 on a bad filter or an "
        "empty selection, with the reason."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--campaign", metavar="ID", help="A campaign id.")
        which.add_argument(
            "--search", metavar="QUERY", help='Search words, as on the page (e.g. "red sneaker").'
        )
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="A search filter, as the page's parameters (status=approved, rights=campaign, "
            "rights_expired=no, campaign=ID...); repeatable.",
        )
        parser.add_argument("--out", required=True, metavar="FILE.zip", help="Where to write it.")
        parser.add_argument("--layout", default="default", choices=list(Export.Layout.values))
        parser.add_argument(
            "--include-expired",
            action="store_true",
            help="Include assets whose rights have expired (left out by default).",
        )
        parser.add_argument("--user", metavar="USERNAME", help="Who it is recorded as made by.")

    def handle(self, *args, **opts):
        out = Path(opts["out"])
        if not out.parent.is_dir():
            raise CommandError(f"--out: the folder {out.parent} does not exist", returncode=2)
        user = self._user(opts["user"])
        kwargs = {"layout": opts["layout"], "include_expired": opts["include_expired"]}
        if opts["campaign"] is not None:
            if opts["filter"]:
                raise CommandError("--filter: filters go with --search", returncode=2)
            kwargs["campaign"] = self._campaign(opts["campaign"])
        else:
            kwargs["search"] = self._search(opts["search"], opts["filter"])
        try:
            # Not handed to the queue: the builder runs right here.
            export = export_create(user=user, enqueue=False, **kwargs)
        except InputError as exc:
            raise CommandError(
                "\n".join(_option(e.field) + e.message for e in exc.errors), returncode=2
            ) from None
        built = export_build(export_id=export.pk)
        export.refresh_from_db()
        if built is None or export.status != Export.Status.READY:
            raise CommandError(f"the export failed: {export.error or export.status}")
        with default_storage.open(export.file.name, "rb") as source, out.open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        self.stdout.write(
            f"{out}: {export.total - len(export.left_out)} of {export.total} images, "
            f"{export.bytes:,} bytes; export {export.pk}"
        )
        for entry in export.left_out:
            self.stdout.write(f"left out: {entry['title']} ({entry['asset']}): {entry['reason']}")

    def _user(self, username):
        if not username:
            return None
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--user: no user {username!r}", returncode=2)
        return user

    def _campaign(self, value: str):
        from django.core.exceptions import ValidationError

        from generation.models import Campaign

        try:
            campaign = Campaign.objects.filter(pk=value).only("pk", "name").first()
        except (ValueError, ValidationError):
            campaign = None
        if campaign is None:
            raise CommandError(f"--campaign: no campaign {value!r}", returncode=2)
        return campaign

    def _search(self, query: str, filters: list[str]) -> dict:
        search: dict = {"q": query}
        for text in filters:
            name, sep, value = text.partition("=")
            name = name.strip()
            if not sep or not name:
                raise CommandError(f"--filter: {text!r} is not FIELD=VALUE", returncode=2)
            if name in search:
                previous = search[name]
                search[name] = [*(previous if isinstance(previous, list) else [previous]), value]
            else:
                search[name] = value
        return search


def _option(field: str) -> str:
    if field.startswith("search."):
        name = field.removeprefix("search.")
        return ("--search" if name == "q" else f"--filter {name}") + ": "
    return f"{field}: " if field else ""
