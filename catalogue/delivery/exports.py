"""Catalogue exports: a zip of renditions with manifest.json and manifest.csv, from a campaign
or from every result of a catalogue search, built on the delivery queue (the "export" stage)
and streamed to storage.

Peak memory does not grow with the number of assets: assets are read in chunks
(``QuerySet.iterator``), each file is copied from storage into a zip on disk
(``shutil.copyfileobj``, hashed while copied), and the manifest rows go to temporary files on
disk as they are made, joined into the zip at the end. Only the zip's own directory (one small
record per file, as zipfile keeps it) and the list of what was left out stay in memory.

The builder is ``export_build(export_id=...)``: it claims the row with a conditional update
(queued, or building with a lease that ran out, -> building), so a second run of the job does
nothing and a run after a worker's death starts the zip again from the beginning.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import tempfile
import zipfile
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.text import slugify

from catalogue.delivery.renditions import EXTENSIONS
from catalogue.forms import CatalogueSearchForm
from catalogue.models import Asset, Export, Rendition
from catalogue.selectors import entries_filtered
from catalogue.services import asset_download_name
from catalogue.text import csv_cell, fold
from generation.models import Campaign
from studio import queues, webhooks
from studio.errors import FieldError, InputError
from studio.roles import ADMIN, CREATIVE, MANAGER, has_role

logger = logging.getLogger(__name__)

# Who may export: the people who deliver images. Reviewers judge images but do not hand them
# over; users without a role see nothing.
EXPORTERS = (CREATIVE, MANAGER, ADMIN)
# Managers and admins see every export; the others their own.
EXPORT_OVERSEERS = (MANAGER, ADMIN)
# Assets read per chunk; progress is written after each.
EXPORT_CHUNK = 200
COPY_BUFFER = 1024 * 1024
# Search parameters an export does not take: they choose a page or an order, not a selection.
SEARCH_IGNORED = ("page", "sort")
# The CSV column that names a game asset's type, first one found; else the item's purpose.
TYPE_COLUMNS = ("asset_type", "type", "category")
MANIFEST_COLUMNS = [
    "asset_id",
    "item_id",
    "campaign_id",
    "title",
    "row",
    "variation",
    "axes",
    "channel",
    "width",
    "height",
    "format",
    "upscaled",
    "path",
    "bytes",
    "sha256",
    "tags",
    "rights",
    "rights_until",
    "rights_expired",
]
CSV_PREFIX = "csv."  # the CSV row's own columns, after the fixed ones
NOT_DELIVERED = "not delivered yet"


# --- The selection -----------------------------------------------------------------------------


def _search_data(search: dict) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in (search or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        data.setlist(str(name), ["" if v is None else str(v) for v in values])
    return data


def export_search_check(search) -> dict:
    """The search parameters checked by the catalogue's search form (the page's messages);
    returns them as strings (lists for repeated ones), without page and sort. InputError names
    the field, as ``search.<name>``."""
    if hasattr(search, "lists"):  # a QueryDict (the search page's parameters)
        search = {name: values if len(values) > 1 else values[0] for name, values in search.lists()}
    if not isinstance(search, dict):
        raise InputError("search", "give the search as its parameters, e.g. {'q': 'sneaker'}")
    search = {str(k): v for k, v in search.items() if str(k) not in SEARCH_IGNORED}
    known = set(CatalogueSearchForm.base_fields)
    unknown = sorted(name for name in search if name not in known)
    if unknown:
        filters = ", ".join(sorted(known - set(SEARCH_IGNORED)))
        raise InputError(
            [FieldError(f"search.{name}", f"not a filter; use {filters}") for name in unknown]
        )
    form = CatalogueSearchForm(_search_data(search))
    if not form.is_valid():
        raise InputError(
            [FieldError(f"search.{name}", message) for name, _, message in form.error_lines()]
        )
    cleaned = {}
    for name, value in search.items():
        values = value if isinstance(value, list | tuple) else [value]
        values = ["" if v is None else str(v) for v in values]
        if not any(v.strip() for v in values):
            continue
        cleaned[name] = values if name == "status" or len(values) > 1 else values[0]
    return cleaned


def export_assets(export: Export) -> QuerySet:
    """The published assets the export's selection holds (a campaign's, or every result of
    its search), unordered; withdrawn assets are never exported."""
    assets = Asset.objects.filter(status=Asset.Status.PUBLISHED)
    if export.campaign_id:
        return assets.filter(campaign_id=export.campaign_id)
    form = CatalogueSearchForm(_search_data(export.search))
    if not form.is_valid():  # it was checked when made; a later change of the form's rules
        return assets.none()
    kwargs = form.search_kwargs()
    entries = entries_filtered(query=kwargs["query"], filters=kwargs["filters"])
    return assets.filter(item_id__in=entries.order_by().values("item_id"))


def export_selection_label(export: Export) -> str:
    if export.campaign_id:
        return f"campaign {export.campaign.name if export.campaign else export.campaign_id}"
    if not export.search:
        return "every published image"
    return "search " + _search_data(export.search).urlencode()


# --- Creating one ------------------------------------------------------------------------------


def export_may_create(user) -> bool:
    return has_role(user, *EXPORTERS)


def export_may_see(user, export: Export) -> bool:
    if has_role(user, *EXPORT_OVERSEERS):
        return True
    return has_role(user, *EXPORTERS) and export.created_by_id == user.pk


def exports_for_user(user) -> QuerySet:
    exports = Export.objects.select_related("campaign", "created_by")
    if has_role(user, *EXPORT_OVERSEERS):
        return exports
    if has_role(user, *EXPORTERS):
        return exports.filter(created_by=user)
    return exports.none()


def export_create(
    *,
    user,
    campaign=None,
    search: dict | None = None,
    layout: str = Export.Layout.DEFAULT,
    include_expired: bool = False,
    enqueue: bool = True,
) -> Export:
    """An export of a campaign's published assets or of every result of a search (the search
    form's parameters), queued for the delivery queue's "export" stage after the commit.

    Exactly one of ``campaign`` and ``search``. InputError names the field: a bad filter
    (``search.<name>``), an unknown layout, or a selection with nothing to export. Without
    ``enqueue`` the caller builds it itself (``export_build``; the command line does)."""
    if (campaign is None) == (search is None):
        raise InputError("selection", "choose either a campaign or a search to export")
    if layout not in Export.Layout.values:
        raise InputError("layout", f"{layout!r} is not a layout; use {', '.join(Export.Layout)}")
    if campaign is not None and not isinstance(campaign, Campaign):
        found = Campaign.objects.filter(pk=campaign).only("pk", "name").first()
        if found is None:
            raise InputError("campaign", "no such campaign")
        campaign = found
    export = Export(
        campaign=campaign,
        search=export_search_check(search) if search is not None else {},
        layout=layout,
        include_expired=bool(include_expired),
        created_by=user if getattr(user, "pk", None) else None,
    )
    total = export_assets(export).count()
    if total == 0:
        what = "the campaign has" if campaign is not None else "the search finds"
        raise InputError("selection", f"{what} no published images: nothing to export")
    export.total = total
    with transaction.atomic():
        export.save()
        if enqueue:
            queues.enqueue("export", export.pk, job_id=f"export-{export.pk}")
    return export


# --- Building it -------------------------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=settings.STUDIO_EXPORT_LEASE_SECONDS)


def export_claim(*, export_id) -> Export | None:
    """Take the export for building: queued, or building with a lease that ran out (a worker
    died). None when another run has it, or it is done."""
    now = timezone.now()
    claimed = (
        Export.objects.filter(pk=export_id)
        .filter(
            Q(status=Export.Status.QUEUED)
            | Q(status=Export.Status.BUILDING, lease_until__lt=now)
            | Q(status=Export.Status.BUILDING, lease_until__isnull=True)
        )
        .update(
            status=Export.Status.BUILDING,
            lease_until=now + _lease(),
            started_at=now,
            attempts=F("attempts") + 1,
            done=0,
            error="",
        )
    )
    if not claimed:
        return None
    return Export.objects.select_related("campaign").get(pk=export_id)


def _mine(export: Export) -> QuerySet:
    """This run's claim: the started_at it wrote (a run whose lease was taken over by another
    changes nothing any more)."""
    return Export.objects.filter(
        pk=export.pk, status=Export.Status.BUILDING, started_at=export.started_at
    )


def export_path(export: Export) -> str:
    return f"exports/{export.pk}.zip"


def export_download_name(export: Export) -> str:
    if export.campaign_id and export.campaign is not None:
        stem = slugify(fold(export.campaign.name))[:60] or "campaign"
    else:
        stem = "catalogue-search"
    return f"{stem}-{export.created_at:%Y%m%d-%H%M}.zip"


def _slug(text: str, fallback: str) -> str:
    return slugify(fold(str(text or "")))[:80] or fallback


def asset_type(asset: Asset) -> str:
    """The folder a game engine gets the asset in: its CSV row's asset_type, type or category
    column, else the item's purpose."""
    lowered = {str(k).strip().lower(): v for k, v in (asset.fields or {}).items()}
    for column in TYPE_COLUMNS:
        value = lowered.get(column)
        if value is not None and str(value).strip():
            return _slug(value, "assets")
    return _slug(asset.item.purpose, "assets")


class _Paths:
    """Unique names inside the zip: a second file that would take a name gets -2, -3..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, path: str) -> str:
        if path not in self.used:
            self.used.add(path)
            return path
        stem, dot, ext = path.rpartition(".")
        n = 2
        while f"{stem}-{n}{dot}{ext}" in self.used:
            n += 1
        path = f"{stem}-{n}{dot}{ext}"
        self.used.add(path)
        return path


def _rendition_path(export: Export, asset: Asset, rendition: Rendition, stem: str) -> str:
    ext = EXTENSIONS.get(rendition.format, rendition.format)
    if export.layout == Export.Layout.GAME_ENGINE:
        return f"{asset_type(asset)}/{stem}/{_slug(rendition.channel, 'file')}.{ext}"
    return f"{_slug(rendition.channel, 'file')}/{stem}.{ext}"


class _Hashing:
    """A write-through file wrapper that hashes what it writes (shutil.copyfileobj target)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, block: bytes) -> int:
        self.digest.update(block)
        self.size += len(block)
        return self.out.write(block)


def _copy_file(zf: zipfile.ZipFile, name: str, path: str) -> tuple[str, int]:
    with default_storage.open(name, "rb") as source, zf.open(path, "w", force_zip64=True) as out:
        target = _Hashing(out)
        shutil.copyfileobj(source, target, COPY_BUFFER)
    return target.digest.hexdigest(), target.size


def _csv_columns(assets: QuerySet) -> list[str]:
    """The CSV columns of the campaigns in the selection (few campaigns, whatever the
    number of assets), in order of first appearance."""
    columns: list[str] = []
    campaign_ids = assets.order_by().values("campaign_id").distinct()
    for names in (
        Campaign.objects.filter(pk__in=campaign_ids)
        .order_by("created_at")
        .values_list("csv_columns", flat=True)
    ):
        for name in names or []:
            if name not in columns:
                columns.append(name)
    return columns


def _variations(chunk: list[Asset]) -> dict[tuple, list[str]]:
    """For each (campaign, CSV row) of the chunk, the published assets made from it."""
    keys = {(a.campaign_id, a.item.row_index) for a in chunk}
    if not keys:
        return {}
    query = Q()
    for campaign_id, row in keys:
        query |= Q(campaign_id=campaign_id, item__row_index=row)
    found: dict[tuple, list[str]] = {}
    rows = (
        Asset.objects.filter(query, status=Asset.Status.PUBLISHED)
        .order_by("item__variation", "item__channel", "pk")
        .values_list("campaign_id", "item__row_index", "pk")
    )
    for campaign_id, row, pk in rows:
        found.setdefault((campaign_id, row), []).append(str(pk))
    return found


def _left(asset: Asset, reason: str) -> dict:
    return {
        "asset": str(asset.pk),
        "item": str(asset.item_id),
        "title": asset.title,
        "reason": reason,
    }


class _Build:
    """One run of the builder: the zip on disk and the manifests' rows in temporary files."""

    def __init__(self, export: Export) -> None:
        self.export = export
        self.today = timezone.localdate()
        self.paths = _Paths()
        self.left_out: list[dict] = []
        self.files = 0
        self.assets = 0
        self.done = 0
        self.zip_file = tempfile.TemporaryFile(suffix=".zip")
        self.zf = zipfile.ZipFile(self.zip_file, "w", compression=zipfile.ZIP_STORED)
        self.rows_csv = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        self.rows_json = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.assets_json = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.csv_writer = csv.writer(self.rows_csv, lineterminator="\r\n")

    def close(self) -> None:
        try:
            self.zf.close()  # closed already once built; after a failure, its temp file goes
        except (OSError, ValueError):
            pass
        for handle in (self.rows_csv, self.rows_json, self.assets_json, self.zip_file):
            handle.close()

    def run(self) -> None:
        assets = export_assets(self.export)
        self.columns = _csv_columns(assets)
        self.csv_writer.writerow(MANIFEST_COLUMNS + [CSV_PREFIX + c for c in self.columns])
        total = assets.count()
        _mine(self.export).update(total=total)
        ordered = (
            assets.select_related("item", "item__entry")
            .defer("provenance", "delivery", "prompt", "item__entry__search_vector")  # large
            .prefetch_related(
                Prefetch("renditions", queryset=Rendition.objects.order_by("channel"))
            )
            .order_by("campaign_id", "item__row_index", "item__variation", "item__channel", "pk")
        )
        chunk: list[Asset] = []
        done = 0
        for asset in ordered.iterator(chunk_size=EXPORT_CHUNK):
            chunk.append(asset)
            if len(chunk) >= EXPORT_CHUNK:
                done += self.chunk(chunk)
                chunk = []
                self.progress(done, total)
        if chunk:
            done += self.chunk(chunk)
            self.progress(done, total)
        self.done = done
        self.manifests()
        self.zf.close()

    def progress(self, done: int, total: int) -> None:
        renewed = _mine(self.export).update(
            done=done, total=max(total, done), lease_until=timezone.now() + _lease()
        )
        if not renewed:
            raise LeaseLost(f"export {self.export.pk} was taken over by another run")

    def chunk(self, chunk: list[Asset]) -> int:
        variations = _variations(chunk) if self.export.layout == Export.Layout.GAME_ENGINE else {}
        for asset in chunk:
            self.asset(asset, variations)
        return len(chunk)

    def asset(self, asset: Asset, variations: dict) -> None:
        expired = asset.rights_expired(self.today)
        if expired and not self.export.include_expired:
            self.left_out.append(_left(asset, f"rights expired {asset.rights_until:%Y-%m-%d}"))
            return
        renditions = [r for r in asset.renditions.all() if r.file.name]
        if not renditions:
            self.left_out.append(_left(asset, NOT_DELIVERED))
            return
        # The asset's human download name (ASCII; a product id keeps its capitals).
        stem = asset_download_name(asset).rsplit(".", 1)[0] or str(asset.pk)
        files = []
        for rendition in renditions:
            path = self.paths.take(_rendition_path(self.export, asset, rendition, stem))
            try:
                sha256, size = _copy_file(self.zf, rendition.file.name, path)
            except OSError as exc:
                # A file missing from storage: the others still go; the manifest says why.
                logger.warning("export %s: %s is unreadable: %s", self.export.pk, path, exc)
                self.left_out.append(
                    _left(asset, f"{rendition.channel} rendition missing from storage")
                )
                self.paths.used.discard(path)
                continue
            row = self.row(asset, rendition, path, sha256, size, expired)
            self.csv_writer.writerow(
                [csv_cell(row[c]) for c in MANIFEST_COLUMNS]
                + [csv_cell((asset.fields or {}).get(c, "")) for c in self.columns]
            )
            self.rows_json.write(
                json.dumps(row | {"fields": asset.fields or {}, "axes": asset.item.axes or {}})
                + "\n"
            )
            files.append({k: row[k] for k in ("channel", "path", "width", "height", "format")})
            self.files += 1
        if not files:
            return
        self.assets += 1
        if self.export.layout == Export.Layout.GAME_ENGINE:
            others = variations.get((asset.campaign_id, asset.item.row_index), [])
            entry = {
                "item": str(asset.item_id),
                "title": asset.title,
                "asset_type": asset_type(asset),
                "row": asset.item.row_index,
                "variation": asset.item.variation,
                "label": asset.ab_label,
                "fields": asset.fields or {},
                "tags": _tags(asset),
                "axes": asset.item.axes or {},
                "variations": [pk for pk in others if pk != str(asset.pk)],
                "files": files,
            }
            self.assets_json.write(json.dumps([str(asset.pk), entry]) + "\n")

    def row(self, asset, rendition, path, sha256, size, expired) -> dict:
        return {
            "asset_id": str(asset.pk),
            "item_id": str(asset.item_id),
            "campaign_id": str(asset.campaign_id),
            "title": asset.title,
            "row": asset.item.row_index + 1,
            "variation": asset.item.variation + 1,
            # Its cell of the variation matrix ({"seed": 3, "lora": {"style-a": 0.4}, ...}).
            "axes": json.dumps(asset.item.axes or {}, sort_keys=True, ensure_ascii=False),
            "channel": rendition.channel,
            "width": rendition.width,
            "height": rendition.height,
            "format": rendition.format,
            "upscaled": f"×{rendition.upscale:.1f}" if rendition.upscaled else "",
            "path": path,
            "bytes": size,
            "sha256": sha256,
            "tags": ", ".join(_tags(asset)),
            "rights": asset.rights + (f": {asset.rights_custom}" if asset.rights_custom else ""),
            "rights_until": asset.rights_until.isoformat() if asset.rights_until else "",
            "rights_expired": "yes" if expired else "",
        }

    def manifests(self) -> None:
        export = self.export
        head = {
            "export": str(export.pk),
            "created_at": export.created_at.isoformat(),
            "layout": export.layout,
            "include_expired": export.include_expired,
            "selection": (
                {"campaign": str(export.campaign_id)}
                if export.campaign_id
                else {"search": export.search}
            ),
            "assets": self.assets,
            "files": self.files,
            "left_out": self.left_out,
        }
        with self.zf.open("manifest.json", "w", force_zip64=True) as out:
            text = io.TextIOWrapper(out, encoding="utf-8")
            body = json.dumps(head, ensure_ascii=False, indent=1)
            text.write(body[:-2] + ',\n "rows": [')  # the rows follow, one per file
            _join_lines(self.rows_json, text, "\n  ", ",")
            text.write("\n ]\n}\n")
            text.flush()
            text.detach()
        self.rows_csv.seek(0)
        with self.zf.open("manifest.csv", "w", force_zip64=True) as out:
            text = io.TextIOWrapper(out, encoding="utf-8", newline="")
            text.write("\ufeff")  # spreadsheets then read the file as UTF-8
            shutil.copyfileobj(self.rows_csv, text, COPY_BUFFER)
            text.flush()
            text.detach()
        if export.layout == Export.Layout.GAME_ENGINE:
            with self.zf.open("assets.json", "w", force_zip64=True) as out:
                text = io.TextIOWrapper(out, encoding="utf-8")
                text.write("{")
                self.assets_json.seek(0)
                first = True
                for line in self.assets_json:
                    pk, entry = json.loads(line)
                    text.write(("\n" if first else ",\n") + f" {json.dumps(pk)}: ")
                    text.write(json.dumps(entry, ensure_ascii=False))
                    first = False
                text.write("\n}\n")
                text.flush()
                text.detach()


def _join_lines(source: IO[str], out: IO[str], prefix: str, separator: str) -> None:
    """Write each line of ``source`` (a JSON value) to ``out``, separated, one at a time."""
    source.seek(0)
    first = True
    for line in source:
        out.write(("" if first else separator) + prefix + line.rstrip("\n"))
        first = False


class LeaseLost(RuntimeError):
    """Another run took the export over (this one's lease ran out): this run stops."""


def export_build(*, export_id) -> Export | None:
    """Build the export's zip and store it as ``exports/<id>.zip`` (the "export" job).

    Returns the export once ready; None when there was nothing to do (another run holds it,
    or it is ready, failed or expired already). A failure puts it back in the queue (RQ
    retries the job, the reconciler re-enqueues it) until STUDIO_MAX_ATTEMPTS attempts, then
    marks it failed with the reason."""
    export = export_claim(export_id=export_id)
    if export is None:
        return None
    build = _Build(export)
    try:
        build.run()
        name = export_path(export)
        if default_storage.exists(name):
            default_storage.delete(name)  # an earlier, interrupted attempt's
        build.zip_file.seek(0)
        saved = default_storage.save(name, File(build.zip_file, name=name))
        size = default_storage.size(saved)
    except LeaseLost:
        logger.warning("export %s: lease lost; the other run finishes it", export.pk)
        return None
    except Exception as exc:
        logger.exception("export %s failed", export.pk)
        export_failed(export=export, error=str(exc) or type(exc).__name__)
        raise
    finally:
        build.close()
    now = timezone.now()
    with transaction.atomic():
        finished = _mine(export).update(
            status=Export.Status.READY,
            file=saved,
            bytes=size,
            done=build.done,
            left_out=build.left_out,
            lease_until=None,
            finished_at=now,
            expires_at=now + timedelta(days=settings.STUDIO_EXPORT_DAYS),
        )
        if not finished:
            default_storage.delete(saved)
            return None
        export.refresh_from_db()
        webhooks.event_emit("export.ready", export_event(export, files=build.files))
    return export


def export_event(export: Export, *, files: int) -> dict:
    return {
        "export": {
            "id": str(export.pk),
            "status": export.status,
            "campaign": str(export.campaign_id) if export.campaign_id else None,
            "search": export.search or None,
            "layout": export.layout,
            "assets": export.total,
            "files": files,
            "left_out": len(export.left_out),
            "bytes": export.bytes,
            "expires_at": export.expires_at.isoformat() if export.expires_at else None,
            "download_url": f"/api/v1/exports/{export.pk}/download",
        }
    }


def export_failed(*, export: Export, error: str) -> None:
    """A failed attempt: back to the queue (it is tried again), or failed after the last."""
    last = export.attempts >= settings.STUDIO_MAX_ATTEMPTS
    _mine(export).update(
        status=Export.Status.FAILED if last else Export.Status.QUEUED,
        error=error[:2000],
        lease_until=None,
        finished_at=timezone.now() if last else None,
    )


# --- The reconciler ----------------------------------------------------------------------------


def exports_reconcile() -> dict[str, int]:
    """Exports out of step with the queue: building with a lease that ran out (the worker
    died) or queued for longer than the grace period (the job was lost with Redis) are
    enqueued again, or failed after STUDIO_MAX_ATTEMPTS attempts; ready ones past their
    expiry lose their file and are marked expired."""
    now = timezone.now()
    grace = now - timedelta(seconds=settings.STUDIO_RECONCILE_GRACE_SECONDS)
    stuck = Export.objects.filter(
        Q(status=Export.Status.BUILDING, lease_until__lt=now)
        | Q(status=Export.Status.QUEUED, created_at__lt=grace)
    )
    requeued = failed = 0
    for pk, attempts, status in stuck.values_list("pk", "attempts", "status"):
        if attempts >= settings.STUDIO_MAX_ATTEMPTS:
            failed += Export.objects.filter(pk=pk, status=status).update(
                status=Export.Status.FAILED,
                error=f"gave up after {attempts} attempts (the worker stopped each time)",
                lease_until=None,
                finished_at=now,
            )
            continue
        if _job_waiting(pk, running_counts=status == Export.Status.QUEUED):
            continue
        queues.enqueue("export", pk, job_id=f"export-{pk}")
        requeued += 1
    expired = 0
    for pk, name in Export.objects.filter(
        status=Export.Status.READY, expires_at__lt=now
    ).values_list("pk", "file"):
        if Export.objects.filter(pk=pk, status=Export.Status.READY).update(
            status=Export.Status.EXPIRED, file="", bytes=0
        ):
            _delete(name)
            expired += 1
    return {"exports_requeued": requeued, "exports_failed": failed, "exports_expired": expired}


def _job_waiting(pk, *, running_counts: bool) -> bool:
    """Whether the export's job is still in Redis waiting to run (then it is not lost, and
    enqueueing it again would only queue a duplicate). A started job counts for a queued
    export; for a building one whose lease ran out, "started" is the dead worker's."""
    try:
        from rq.job import Job, JobStatus

        job = Job.fetch(f"export-{pk}", connection=queues.connection())
        waiting = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
        if running_counts:
            waiting.add(JobStatus.STARTED)
        return job.get_status(refresh=True) in waiting
    except Exception:  # noqa: BLE001 - no such job, or Redis unreachable: treat as lost
        return False


def _delete(name: str) -> None:
    if not name:
        return
    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("export file %s could not be deleted", name)


def export_progress(export: Export) -> int:
    """Percent done, 0-100."""
    if export.status in (Export.Status.READY, Export.Status.EXPIRED):
        return 100
    return min(100, round(100 * export.done / export.total)) if export.total else 0


def _tags(asset) -> list[str]:
    """The catalogue's tags of the image (CSV values, colours, matrix cell, people's edits),
    else the asset's own."""
    entry = getattr(asset.item, "entry", None)
    return list(entry.tag_names) if entry is not None else list(asset.tags or [])
