"""Writes for the catalogue, the only owner of asset state: publishing approved items,
following their approval (sync), withdrawals and restores, and the search index."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet, TextField, Value
from django.utils import timezone

from catalogue.costs import asset_storage_record
from catalogue.models import Asset, Entry, RightsChange
from catalogue.text import fold
from generation.models import Item
from generation.sizes import CHANNELS
from studio import freshness, queues
from studio.errors import FieldError, InputError, text_problem

logger = logging.getLogger(__name__)

SEARCH_CONFIG = "english"
THUMBNAIL_SIDE = 384


def _thumbnail(item: Item) -> bytes:
    from PIL import Image

    with item.image.open("rb") as handle:
        image = Image.open(handle, formats=["PNG"])
        image.load()
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", quality=85)
    return buffer.getvalue()


def _approved_by(item: Item) -> str:
    task = getattr(item, "review_task", None)
    if task is not None and task.decided_by_id:
        return task.decided_by.get_username()
    return "automatic"


def asset_publish(*, item_id) -> Asset | None:
    """Publish an approved item as a catalogue asset (once; a second call returns it)."""
    item = (
        Item.objects.select_related("campaign__recipe", "base_model", "review_task__decided_by")
        .filter(pk=item_id)
        .first()
    )
    if item is None or item.status != Item.Status.APPROVED:
        return None
    existing = Asset.objects.filter(item=item).first()
    if existing:
        return existing
    thumb_name = default_storage.save(
        f"thumbnails/{item.campaign_id}/{item.pk}.webp", ContentFile(_thumbnail(item))
    )
    quality = getattr(item, "quality", None)
    provenance = item.provenance() | {
        "recipe": item.params.get("recipe"),
        "template": str(item.template_version or item.campaign.template_version),
        "generated_at": item.generated_at.isoformat() if item.generated_at else None,
        "worker": item.worker,
        "duration_s": item.duration_s,
        "quality": {"overall": quality.overall, "verdict": quality.verdict} if quality else None,
    }
    title = " ".join(v for v in list(item.row_data.values())[:3] if v)[:300] or item.prompt[:300]
    try:
        with transaction.atomic():
            asset = Asset.objects.create(
                item=item,
                campaign=item.campaign,
                title=title,
                prompt=item.prompt,
                tags=[item.purpose] if item.purpose else [],
                fields=item.row_data,
                provenance=provenance,
                image=item.image.name,
                thumbnail=thumb_name,
                width=item.params["width"],
                height=item.params["height"],
                cost=item.cost,
                approved_by=_approved_by(item),
            )
            asset_storage_record(asset=asset)  # its storage, into the cost ledger
    except IntegrityError:
        # Published concurrently by another run of the same job.
        default_storage.delete(thumb_name)
        return Asset.objects.get(item=item)
    entries_sync(item_ids=[item.pk])  # the entry now shows the image as published
    return asset


# A withdrawn asset published again keeps no trace of the withdrawal on its row.
_PUBLISHED_AGAIN = {
    "status": Asset.Status.PUBLISHED,
    "withdrawn_reason": "",
    "withdrawn_note": "",
    "withdrawn_by": None,
    "withdrawn_at": None,
}


def asset_sync(*, item_id) -> Asset | None:
    """Make the item's asset follow the item's approval; idempotent (the delivery job).

    Approved: publish it, or publish again an asset that an undone approval withdrew. Not
    approved (an approval undone): withdraw a published asset, recording why. An asset an
    admin withdrew stays withdrawn whatever happens to the item.
    """
    status = Item.objects.filter(pk=item_id).values_list("status", flat=True).first()
    if status is None:
        return None
    asset = Asset.objects.filter(item_id=item_id).first()
    if status == Item.Status.APPROVED and asset is None:
        return asset_publish(item_id=item_id)  # which indexes the entry too
    if status == Item.Status.APPROVED:
        Asset.objects.filter(
            pk=asset.pk, status=Asset.Status.WITHDRAWN, withdrawn_reason=Asset.Withdrawal.REVIEW
        ).update(**_PUBLISHED_AGAIN)
    elif asset is not None:
        Asset.objects.filter(pk=asset.pk, status=Asset.Status.PUBLISHED).update(
            status=Asset.Status.WITHDRAWN,
            withdrawn_reason=Asset.Withdrawal.REVIEW,
            withdrawn_note=f"the item is {status} again",
            withdrawn_at=timezone.now(),
        )
    if asset is not None:
        asset.refresh_from_db()
    entries_sync(item_ids=[item_id])  # published or not, as the asset now is
    return asset


def asset_withdraw(*, asset: Asset, user, note: str = "") -> bool:
    """An admin withdraws a published asset; no automatic step publishes it again."""
    changed = Asset.objects.filter(pk=asset.pk, status=Asset.Status.PUBLISHED).update(
        status=Asset.Status.WITHDRAWN,
        withdrawn_reason=Asset.Withdrawal.ADMIN,
        withdrawn_note=(note or "").strip(),
        withdrawn_by=user,
        withdrawn_at=timezone.now(),
    )
    entries_sync(item_ids=[asset.item_id])
    return bool(changed)


def asset_restore(*, asset: Asset, user) -> bool:
    """An admin publishes a withdrawn asset again; only while its item is approved."""
    if not Item.objects.filter(pk=asset.item_id, status=Item.Status.APPROVED).exists():
        raise InputError("status", "the image is no longer approved; approve it in review first")
    changed = Asset.objects.filter(pk=asset.pk, status=Asset.Status.WITHDRAWN).update(
        **_PUBLISHED_AGAIN
    )
    entries_sync(item_ids=[asset.item_id])
    return bool(changed)


def assets_reconcile() -> dict[str, int]:
    """Assets out of step with their items (a delivery job lost with Redis or a worker):
    approved items without a published asset, published assets of items no longer
    approved. Hands them to the delivery stage again; its job is idempotent."""
    stale = timezone.now() - timedelta(seconds=2 * settings.JOB_TIMEOUT_DELIVERY)
    unpublished = (
        Item.objects.filter(status=Item.Status.APPROVED, finished_at__lt=stale)
        .exclude(asset__status=Asset.Status.PUBLISHED)
        .exclude(asset__withdrawn_reason=Asset.Withdrawal.ADMIN)
    )
    orphaned = Asset.objects.filter(status=Asset.Status.PUBLISHED).exclude(
        item__status=Item.Status.APPROVED
    )
    ids = [str(pk) for pk in unpublished.values_list("pk", flat=True)]
    ids += [str(pk) for pk in orphaned.values_list("item_id", flat=True)]
    for start in range(0, len(ids), 50):
        queues.enqueue("deliver", ids[start : start + 50])
    return {"resynced": len(ids)}


# --- The index of every image ---------------------------------------------------------------

# CSV columns that name the product (weight A with the title); every other column is a
# describing field (weight C, with the tags).
NAME_COLUMNS = ("name", "product", "product_name", "title", "asset", "asset_name", "asset_type")
ID_COLUMNS = ("sku", "id", "post_id", "asset_id", "product_id")
INDEX_BATCH = 500


def entry_title(row: dict) -> str:
    """A person's name for the image: its id and name from the CSV row ("SH-1001 · Aero
    Runner"), else its first values."""
    lowered = {str(k).strip().lower(): str(v).strip() for k, v in row.items() if v}
    ident = next((lowered[c] for c in ID_COLUMNS if lowered.get(c)), "")
    name = next((lowered[c] for c in NAME_COLUMNS if lowered.get(c)), "")
    title = " · ".join(part for part in (ident, name) if part)
    return (title or " ".join(list(lowered.values())[:3]))[:300]


def _folded(text: str, weight: str):
    """Both the English stems and the words as written (accents folded): a Vietnamese or
    Indonesian word is found by itself, an English plural by its stem."""
    value = Value(fold(text), output_field=TextField())
    return SearchVector(value, config="english", weight=weight) + SearchVector(
        value, config="simple", weight=weight
    )


def _search_document(item: Item, asset: Asset | None, tag_names=()):
    row = {str(k).strip().lower(): str(v) for k, v in (item.row_data or {}).items() if v}
    naming = [row[c] for c in (*ID_COLUMNS, *NAME_COLUMNS) if c in row]
    describing = [v for c, v in row.items() if c not in ID_COLUMNS + NAME_COLUMNS]
    tags = [*(asset.tags if asset is not None else []), *tag_names]
    names = [item.campaign.name, item.base_model.name] + [lora["name"] for lora in item.loras]
    return (
        _folded(" ".join([entry_title(item.row_data or {}), *naming]), "A")
        + _folded(item.prompt, "B")
        + _folded(" ".join(describing + tags), "C")
        + _folded(" ".join(names), "D")
    )


# Columns whose values are ids or free text, never tags.
UNTAGGED_COLUMNS = (*ID_COLUMNS, "name", "product", "product_name", "title", "asset_name")
MAX_TAG = 100


def automatic_tags(item: Item) -> list[dict]:
    """Tags with their source: the CSV row's describing values ("csv"), its variation-matrix
    cell ("matrix": LoRA weights, recipe, template version, guidance, steps), the image's
    dominant colours ("colour", with the share of the frame), CLIP's zero-shot tags when it is
    configured ("clip", with the probability) and what the scorers measured about its look
    ("quality")."""
    tags: dict[str, dict] = {}

    def add(tag: str, source: str, score: float | None = None) -> None:
        tag = _tag(tag)
        if tag and tag not in tags:
            tags[tag] = {"tag": tag, "source": source, "score": score}

    for column, value in (item.row_data or {}).items():
        if str(column).strip().lower() not in UNTAGGED_COLUMNS and value and len(value) <= 40:
            add(value, "csv")
    if item.purpose:
        add(item.purpose, "csv")
    # Its cell of the campaign's variation matrix (the seed number alone is not a tag).
    axes = item.axes or {}
    for name, weight in (axes.get("lora") or {}).items():
        add(f"{name} {weight:g}", "matrix")
    if axes.get("lora_set"):
        add(axes["lora_set"], "matrix")
    for axis in ("recipe", "template", "guidance", "steps"):
        if axes.get(axis) is not None:
            value = axes[axis]
            add(f"{axis} {value:g}" if isinstance(value, float) else f"{axis} {value}", "matrix")
    quality = getattr(item, "quality", None)
    if quality is not None:
        for colour in quality.palette or []:
            add(colour["name"], "colour", colour["share"])
        for tag in quality.clip_tags or []:
            add(tag["tag"], "clip", tag["score"])
        measures, scores = quality.measures or {}, quality.scores or {}
        if measures.get("plain_backdrop") and measures.get("backdrop_luma", 0) >= 235:
            add("white background", "quality")
        elif measures.get("plain_backdrop"):
            add("plain background", "quality")
        luma = measures.get("mean_luma")
        if luma is not None and luma < 70:
            add("dark", "quality")
        elif luma is not None and luma > 190:
            add("high-key", "quality")
        if scores.get("contrast", 1.0) < 0.5:
            add("low contrast", "quality")
        if scores.get("sharpness", 1.0) < 0.5:
            add("soft focus", "quality")
    return list(tags.values())


def _effective_tags(auto: list[dict], *, added, removed) -> list[dict]:
    removed = set(removed)
    tags = [t for t in auto if t["tag"] not in removed]
    have = {t["tag"] for t in tags}
    tags += [{"tag": t, "source": "manual", "score": None} for t in added if t not in have]
    return tags


def _tag(text: str) -> str:
    return " ".join(str(text).lower().split())[:MAX_TAG]


def _batches(ids, size: int | None = None):
    """``ids`` (a list, or a queryset of ids streamed from the server) in lists of ``size``
    (INDEX_BATCH): a whole search's selection is worked through without holding it in
    memory."""
    size = size or INDEX_BATCH
    if isinstance(ids, QuerySet):
        ids = ids.iterator(chunk_size=size)
    iterator = iter(ids)
    while batch := list(islice(iterator, size)):
        yield batch


def tags_check(*, add=(), remove=()) -> tuple[list[str], list[str]]:
    """The tags to add and to remove, normalised (lower case, single spaces); a tag named in
    both is added. InputError names the field when there is nothing to do or a tag is too
    long."""
    errors = []
    for name, tags in (("add", add), ("remove", remove)):
        if any(len(" ".join(str(t).split())) > MAX_TAG for t in tags):
            errors.append(FieldError(name, f"a tag has at most {MAX_TAG} characters"))
        elif problem := next(filter(None, (text_problem(_tag(t)) for t in tags if _tag(t))), None):
            errors.append(FieldError(name, f"a tag: {problem}"))
    if errors:
        raise InputError(errors)
    add = [t for t in dict.fromkeys(_tag(t) for t in add) if t]
    remove = [t for t in dict.fromkeys(_tag(t) for t in remove) if t and t not in add]
    if not add and not remove:
        raise InputError("add", "name at least one tag to add or remove")
    return add, remove


def entries_tags_edit(*, item_ids, add=(), remove=()) -> int:
    """A creative adds or removes tags on one image or a whole selection (``item_ids``: a
    list, or a queryset of ids for every result of a search, worked through in batches). The
    edits are kept on the entry, so re-indexing never undoes them. One transaction; returns
    how many entries changed."""
    add, remove = tags_check(add=add, remove=remove)
    changed = 0
    with transaction.atomic():
        for batch in _batches(item_ids):
            rows = (
                Entry.objects.select_for_update()
                .filter(item_id__in=batch)
                .values_list("item_id", "tags_added", "tags_removed")
                .order_by()
            )
            edited = [
                Entry(
                    item_id=item_id,
                    tags_added=[t for t in dict.fromkeys([*added, *add]) if t not in remove],
                    tags_removed=[t for t in dict.fromkeys([*removed, *remove]) if t not in add],
                )
                for item_id, added, removed in rows
            ]
            Entry.objects.bulk_update(edited, ["tags_added", "tags_removed"])
            entries_sync(item_ids=[entry.item_id for entry in edited])
            changed += len(edited)
    return changed


# What entries_sync writes; tags_added and tags_removed are a person's and stay as they are.
_ENTRY_COLUMNS = (
    "campaign_id",
    "status",
    "published",
    "asset_status",
    "verdict",
    "reason_codes",
    "reviewer",
    "template_version_id",
    "recipe_id",
    "model_name",
    "model_version",
    "loras",
    "lora_names",
    "purpose",
    "channel",
    "rights",
    "rights_until",
    "title",
    "generated_at",
    "approved_at",
    "score",
    "cost",
    "tags",
    "tag_names",
    "search_vector",
    "updated_at",
)


def entries_sync(*, item_ids) -> int:
    """Bring the catalogue's entries for these items in step with the items (the "index"
    stage; idempotent). Three statements per batch of INDEX_BATCH items, whatever their
    number: the items with everything an entry shows, the people's tag edits (locked), one
    upsert.
    Returns how many entries were written."""
    written = 0
    for batch in _batches(list(item_ids)):
        items = list(
            Item.objects.filter(pk__in=batch).select_related(
                "campaign", "base_model", "quality", "review_task__decided_by", "asset"
            )
        )
        if not items:
            continue
        with transaction.atomic():
            # Locked (in one order, against deadlocks) so that a person's tag edit committing
            # meanwhile is waited for and read, never overwritten with the tags from before.
            edits = {
                item_id: (added, removed)
                for item_id, added, removed in Entry.objects.select_for_update()
                .filter(item_id__in=[item.pk for item in items])
                .order_by("item_id")
                .values_list("item_id", "tags_added", "tags_removed")
            }
            entries = [_entry_for(item, *edits.get(item.pk, ([], []))) for item in items]
            Entry.objects.bulk_create(
                entries,
                update_conflicts=True,
                unique_fields=["item"],
                update_fields=_ENTRY_COLUMNS,
            )
        written += len(entries)
    if written:
        freshness.changed(freshness.CATALOGUE)  # kept search answers
    return written


def _entry_for(item: Item, tags_added: list[str], tags_removed: list[str]) -> Entry:
    quality = getattr(item, "quality", None)
    task = getattr(item, "review_task", None)
    asset = getattr(item, "asset", None)
    codes = set(quality.reason_codes if quality else [])
    reviewer = ""
    if task is not None and task.decided_by_id:
        reviewer = task.decided_by.get_username()
        if task.decision == "rejected" and task.reason_code:
            codes.add(task.reason_code)
    approved_at = None
    if item.status == Item.Status.APPROVED:
        approved_at = (task.decided_at if task is not None and task.decided_at else None) or (
            item.finished_at
        )
    tags = _effective_tags(automatic_tags(item), added=tags_added, removed=tags_removed)
    names = [t["tag"] for t in tags]
    return Entry(
        item_id=item.pk,
        campaign_id=item.campaign_id,
        status=item.status,
        published=asset is not None and asset.status == Asset.Status.PUBLISHED,
        asset_status=asset.status if asset is not None else "",
        verdict=quality.verdict if quality else "",
        reason_codes=sorted(codes),
        reviewer=reviewer,
        template_version_id=item.template_version_id or item.campaign.template_version_id,
        recipe_id=item.recipe_id,
        model_name=item.base_model.name,
        model_version=item.base_model.version,
        loras=[f"{lora['name']}:{lora['version']}" for lora in item.loras],
        lora_names=sorted({lora["name"] for lora in item.loras}),
        purpose=item.purpose,
        channel=item.channel,
        rights=asset.rights if asset is not None else "",
        rights_until=asset.rights_until if asset is not None else None,
        title=entry_title(item.row_data or {}) or item.prompt[:300],
        generated_at=item.generated_at,
        approved_at=approved_at,
        score=quality.overall if quality else None,
        cost=item.cost,
        tags=tags,
        tag_names=names,
        tags_added=tags_added,
        tags_removed=tags_removed,
        search_vector=_search_document(item, asset, names),
    )


def entries_reconcile(*, limit: int = 5000) -> dict[str, int]:
    """Items without an entry, or whose entry shows another status: index them again."""
    stale = (
        Item.objects.filter(Q(entry__isnull=True) | ~Q(entry__status=F("status")))
        .values_list("pk", flat=True)
        .order_by()[:limit]
    )
    ids = [str(pk) for pk in stale]
    for start in range(0, len(ids), INDEX_BATCH):
        queues.enqueue("index", ids[start : start + INDEX_BATCH])
    return {"reindexed": len(ids)}


def asset_download_name(asset: Asset) -> str:
    """A human file name for an asset: its product id, name and colour from the CSV row and
    its variation, e.g. ``SH-1001-aero-runner-red-v2.png`` (ASCII, safe in any header)."""
    from django.utils.text import slugify

    row = {str(k).strip().lower(): str(v) for k, v in (asset.fields or {}).items() if v}
    parts = [
        next((row[c] for c in ID_COLUMNS if row.get(c)), ""),
        next((row[c] for c in NAME_COLUMNS if row.get(c)), ""),
        row.get("color") or row.get("colour") or "",
    ]
    slugs = [slugify(fold(part)) for part in parts]
    if parts[0] and parts[0] == parts[0].upper():
        slugs[0] = slugs[0].upper()  # a product id keeps its capitals: SH-1001
    stem = "-".join(slug for slug in slugs if slug)[:120]
    suffix = asset.image.name.rsplit(".", 1)[-1].lower() if "." in asset.image.name else "png"
    return f"{stem or 'image'}-v{asset.item.variation + 1}.{suffix}"


# --- Usage rights ---------------------------------------------------------------------------

# Where an image may be used: the delivery channels and the broader uses a licence names.
RIGHTS_CHANNELS = (
    *CHANNELS,
    "web",
    "print",
    "email",
    "marketplace",
    "advertising",
    "in-game",
)
RIGHTS_FIELDS = (
    "rights",
    "rights_custom",
    "rights_channels",
    "rights_territories",
    "rights_from",
    "rights_until",
    "rights_notes",
)


def rights_check(
    *,
    licence: str,
    custom: str = "",
    channels=(),
    territories=(),
    valid_from=None,
    valid_until=None,
    notes: str = "",
) -> dict:
    """The rights an asset would get, validated (InputError names every bad field)."""
    import pycountry

    errors = []
    if licence not in Asset.Rights.values:
        errors.append(FieldError("licence", f"must be one of {', '.join(Asset.Rights.values)}"))
    custom = (custom or "").strip()
    if licence == Asset.Rights.CUSTOM and not custom:
        errors.append(FieldError("custom", "write the licence when it is custom"))
    channels = sorted({c.strip().lower() for c in channels if c and c.strip()})
    unknown = [c for c in channels if c not in RIGHTS_CHANNELS]
    if unknown:
        errors.append(
            FieldError("channels", f"{', '.join(unknown)}: not one of {', '.join(RIGHTS_CHANNELS)}")
        )
    territories = sorted({t.strip().upper() for t in territories if t and t.strip()})
    bad = [t for t in territories if pycountry.countries.get(alpha_2=t) is None]
    if bad:
        errors.append(
            FieldError("territories", f"{', '.join(bad)}: not ISO 3166-1 codes (e.g. GB, VN, ID)")
        )
    if valid_from and valid_until and valid_until < valid_from:
        errors.append(FieldError("valid_until", "is before valid_from"))
    if len(notes or "") > 2000:
        errors.append(FieldError("notes", "at most 2,000 characters"))
    if errors:
        raise InputError(errors)
    return {
        "rights": licence,
        "rights_custom": custom if licence == Asset.Rights.CUSTOM else "",
        "rights_channels": channels,
        "rights_territories": territories,
        "rights_from": valid_from,
        "rights_until": valid_until,
        "rights_notes": (notes or "").strip(),
    }


def rights_values(asset: Asset) -> dict:
    return {
        name: (value.isoformat() if hasattr(value, "isoformat") else value)
        for name in RIGHTS_FIELDS
        for value in [getattr(asset, name)]
    }


def _rights_write(asset_ids, *, values: dict, user, now) -> int:
    """Write validated rights on these assets, one audit row each, and the entries' copy of
    the licence and its end date; a constant number of statements for the batch."""
    assets = list(Asset.objects.select_for_update().filter(pk__in=asset_ids).order_by())
    changes = []
    for asset in assets:
        before = rights_values(asset)
        for name, value in values.items():
            setattr(asset, name, value)
        asset.rights_set_by, asset.rights_set_at = user, now
        changes.append(
            RightsChange(asset=asset, changed_by=user, before=before, after=rights_values(asset))
        )
    Asset.objects.bulk_update(assets, [*RIGHTS_FIELDS, "rights_set_by", "rights_set_at"])
    RightsChange.objects.bulk_create(changes)
    item_ids = [asset.item_id for asset in assets]
    Entry.objects.filter(item_id__in=item_ids).update(
        rights=values["rights"], rights_until=values["rights_until"]
    )
    freshness.changed(freshness.CATALOGUE)  # kept search answers
    # The renditions carry the rights in their metadata: the delivery stage makes them again
    # (after commit; enqueue waits for it).
    for start in range(0, len(item_ids), 50):
        queues.enqueue("deliver", item_ids[start : start + 50])
    return len(assets)


def assets_rights_set(*, assets, user, **rights) -> int:
    """Set the usage rights of one asset or a selection, in one transaction, audited per
    asset (the values before and after). Validates first: a bad field changes nothing."""
    values = rights_check(**rights)
    ids = [asset.pk for asset in assets]
    now = timezone.now()
    with transaction.atomic():
        return sum(
            _rights_write(batch, values=values, user=user, now=now) for batch in _batches(ids)
        )


def entries_rights_set(*, item_ids, user, **rights) -> dict[str, int]:
    """Set the usage rights on every published asset of a selection of catalogue entries
    (``item_ids``: a list, or a queryset of ids for every result of a search, in batches).
    Only a published asset has rights: the others are skipped and counted. One transaction,
    validated first, every change audited. Returns {"changed", "not_published",
    "withdrawn"}."""
    values = rights_check(**rights)
    now = timezone.now()
    counts = {"changed": 0, "not_published": 0, "withdrawn": 0}
    with transaction.atomic():
        for batch in _batches(item_ids):
            # Locked first, so no asset is withdrawn between being counted and being written.
            assets = dict(
                Asset.objects.select_for_update()
                .filter(item_id__in=batch)
                .values_list("pk", "status")
                .order_by()
            )
            published = [pk for pk, status in assets.items() if status == Asset.Status.PUBLISHED]
            counts["changed"] += _rights_write(published, values=values, user=user, now=now)
            counts["withdrawn"] += len(assets) - len(published)
            counts["not_published"] += len(batch) - len(assets)
    return counts
