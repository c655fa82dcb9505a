"""Renditions per channel: the subject-aware crop (pure), the campaign's delivery settings and
the services that make, remove and reconfigure renditions (the delivery stage calls
renditions_make for every published asset).

A rendition is made again when its fingerprint changes: the delivery settings (with their
version), the channel, the asset's rights, title and status. The master is only ever read."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image, features

from catalogue.delivery.metadata import encode, master_with_provenance
from catalogue.delivery.watermark import watermark_apply, watermark_logo_check
from catalogue.models import Asset, Delivery, Rendition
from catalogue.services import rights_values
from generation.sizes import CHANNELS, PLATFORM_ALIASES, channel_size
from studio import queues
from studio.errors import FieldError, InputError

logger = logging.getLogger(__name__)

FORMATS = ("jpeg", "webp", "png", "avif")
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "png": "png", "avif": "avif"}
# Social platforms take JPEG best; a thumbnail on a web page is smallest as WebP; a custom
# size is usually going somewhere unknown, so it gets a lossless PNG.
DEFAULT_FORMATS = {
    "instagram": "jpeg",
    "instagram-portrait": "jpeg",
    "tiktok": "jpeg",
    "linkedin": "jpeg",
    "web-thumbnail": "webp",
}
CUSTOM_FORMAT = "png"
DELIVER_BATCH = 50
# The settings a rendition depends on (with Delivery.version): any change makes them again.
SETTINGS = (
    "channels",
    "formats",
    "quality",
    "max_upscale",
    "refuse_upscaled",
    "watermark",
    "watermark_text",
    "watermark_logo",
    "watermark_position",
    "watermark_margin",
    "watermark_opacity",
    "watermark_scale",
    "watermark_channels",
)


class MasterMissing(RuntimeError):
    """The asset's master image is not in storage: its delivery fails and is retried."""


# --- Pure functions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    crop: tuple[int, int, int, int]  # x, y, w, h in master pixels
    upscale: float  # target side / crop side (>1: the master is enlarged)


def rendition_plan(master_size: tuple[int, int], subject_box, target: tuple[int, int]) -> Plan:
    """The largest crop of the master with the target's aspect ratio, placed so the subject
    box ([x, y, w, h] in master pixels; empty: none) is whole and centred where the aspect
    allows, else centred on the subject as far as the master allows; no subject: the
    centre. With the factor the crop is enlarged by to reach the target."""
    master_w, master_h = master_size
    target_w, target_h = target
    ratio = target_w / target_h
    if master_w / master_h > ratio:
        crop_h = master_h
        crop_w = min(master_w, max(1, round(master_h * ratio)))
    else:
        crop_w = master_w
        crop_h = min(master_h, max(1, round(master_w / ratio)))
    box = _clamped_box(subject_box, master_size)
    if box is None:
        centre_x, centre_y = master_w / 2, master_h / 2
    else:
        x, y, w, h = box
        centre_x, centre_y = x + w / 2, y + h / 2
    # Centred on the subject, then pushed back inside the master: a subject that fits in the
    # crop stays whole, since it lies inside the master too.
    left = min(max(0, math.floor(centre_x - crop_w / 2 + 0.5)), master_w - crop_w)
    top = min(max(0, math.floor(centre_y - crop_h / 2 + 0.5)), master_h - crop_h)
    upscale = max(target_w / crop_w, target_h / crop_h)
    return Plan(crop=(left, top, crop_w, crop_h), upscale=upscale)


def _clamped_box(subject_box, master_size) -> tuple[int, int, int, int] | None:
    if not subject_box or len(subject_box) != 4:
        return None
    try:
        x, y, w, h = (int(round(float(v))) for v in subject_box)
    except (TypeError, ValueError):
        return None
    master_w, master_h = master_size
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(master_w, x + w), min(master_h, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def rendition_image(master: Image.Image, plan: Plan, target: tuple[int, int]) -> Image.Image:
    """The crop resized to exactly the target with Lanczos (a large reduction first goes
    through Pillow's box reduce, which is faster and looks the same)."""
    x, y, w, h = plan.crop
    return master.resize(
        target, Image.Resampling.LANCZOS, box=(x, y, x + w, y + h), reducing_gap=3.0
    )


def channel_name(channel: str) -> str:
    """A channel's canonical name ("Reels" -> "tiktok", "1600X900" -> "1600x900"); raises
    InputError("channels", ...) with the known names for anything else."""
    name = "-".join(str(channel).strip().lower().replace("_", " ").split())
    name = PLATFORM_ALIASES.get(name, name)
    try:
        channel_size(name)
    except InputError as exc:
        problem = exc.errors[0].message
        known = ", ".join(CHANNELS)
        if "outside" in problem:
            raise InputError("channels", f"custom size {problem}") from None
        raise InputError(
            "channels",
            f"{str(channel).strip()!r} is not a known channel (known: {known}; "
            "or a custom size as WIDTHxHEIGHT, e.g. 1600x900)",
        ) from None
    return name


def default_format(channel: str) -> str:
    return DEFAULT_FORMATS.get(channel, CUSTOM_FORMAT)


def channel_format(delivery: Delivery, channel: str) -> str:
    format = str((delivery.formats or {}).get(channel) or "").lower()
    format = "jpeg" if format == "jpg" else format
    return format if format in FORMATS else default_format(channel)


def avif_available() -> bool:
    return bool(features.check("avif"))


# --- Reading the settings ---------------------------------------------------------------------


def delivery_for(campaign) -> Delivery:
    """The campaign's delivery settings; the defaults (unsaved) when it has none."""
    return Delivery.objects.filter(campaign=campaign).first() or Delivery(campaign=campaign)


def delivery_channels(delivery: Delivery, item) -> list[str]:
    """The channels an item's asset gets: the delivery's when set (for every asset), else
    the channel the item was generated for (a campaign with channels makes one item per
    channel, at that channel's aspect: cropping it to the others would repeat each image in
    every shape), else the campaign's, else a web thumbnail. Names as written (see
    channel_name)."""
    channels = list(delivery.channels or [])
    if not channels and item.channel:
        channels = [item.channel]
    if not channels:
        channels = list(item.campaign.channels or [])
    return list(dict.fromkeys(channels or ["web-thumbnail"]))


def _settings_of(delivery: Delivery) -> dict:
    values = {name: getattr(delivery, name) for name in SETTINGS}
    values["watermark_logo"] = delivery.watermark_logo.name or ""
    values["version"] = delivery.version
    return values


def rendition_fingerprint(delivery: Delivery, asset: Asset, channel: str) -> str:
    """What a rendition was made from; another value means it is out of date."""
    facts = {
        "delivery": _settings_of(delivery),
        "channel": channel,
        "rights": {
            "rights": asset.rights,
            "rights_custom": asset.rights_custom,
            "rights_until": asset.rights_until,
            "channels": asset.rights_channels,
            "territories": asset.rights_territories,
        },
        "title": asset.title,
        "status": asset.status,
    }
    text = json.dumps(facts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def rendition_path(asset: Asset, channel: str, format: str) -> str:
    return f"renditions/{asset.campaign_id}/{asset.pk}/{channel}.{EXTENSIONS[format]}"


# --- Services ---------------------------------------------------------------------------------


def renditions_make(*, asset_id) -> dict:
    """Bring a published asset's renditions in step with its campaign's delivery settings:
    make the missing and out-of-date ones, remove those of channels no longer configured,
    and record the refused channels in Asset.delivery. Idempotent: with nothing changed a
    second run writes nothing. Raises MasterMissing when the master is not in storage.

    Returns {"made": [channels], "kept": [...], "removed": [...], "refused": {channel: why}}.
    """
    outcome: dict = {"made": [], "kept": [], "removed": [], "refused": {}}
    asset = Asset.objects.select_related("campaign", "item__campaign", "item__quality").filter(
        pk=asset_id
    )
    asset = asset.first()
    if asset is None or asset.status != Asset.Status.PUBLISHED:
        return outcome | {"skipped": "not published"}
    delivery = delivery_for(asset.campaign)
    wanted: dict[str, str] = {}
    for written in delivery_channels(delivery, asset.item):
        try:
            wanted.setdefault(channel_name(written), written)
        except InputError as exc:
            outcome["refused"][written] = exc.errors[0].message
    existing = {r.channel: r for r in asset.renditions.all()}
    for channel, rendition in existing.items():
        if channel not in wanted:
            _rendition_delete(rendition)
            outcome["removed"].append(channel)
    todo = []
    for channel in wanted:
        fingerprint = rendition_fingerprint(delivery, asset, channel)
        rendition = existing.get(channel)
        if rendition is not None and rendition.fingerprint == fingerprint:
            outcome["kept"].append(channel)
        else:
            todo.append((channel, fingerprint))
    if todo:
        master = _master(asset)
        quality = getattr(asset.item, "quality", None)
        subject = list(quality.subject_box) if quality is not None else []
        for channel, fingerprint in todo:
            why = _rendition_write(
                asset, delivery, master, subject, channel, fingerprint, existing.get(channel)
            )
            if why:
                outcome["refused"][channel] = why
            else:
                outcome["made"].append(channel)
    master_fingerprint = _master_fingerprint(asset)
    if (asset.delivery or {}).get("master") != master_fingerprint:
        outcome["master"] = _master_deliver(asset)
    # A refused channel has no row: it is looked at again on every run (a plan, no file), and
    # the same reasons found again write nothing.
    refused = outcome["refused"]
    state = {"refused": refused} if refused else {}
    state["master"] = master_fingerprint
    if {k: v for k, v in (asset.delivery or {}).items() if k != "at"} != state:
        Asset.objects.filter(pk=asset.pk).update(
            delivery=state | {"at": timezone.now().isoformat()}
        )
    return outcome


def _master_fingerprint(asset: Asset) -> str:
    """What the delivered master's embedded provenance depends on (never its pixels)."""
    facts = {
        "item": str(asset.item_id),
        "source": asset.item.image.name,
        "rights": rights_values(asset),
        "title": asset.title,
        "signing": bool(settings.STUDIO_C2PA),
    }
    text = json.dumps(facts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _master_deliver(asset: Asset) -> str:
    """Store the delivered master: the generated image's pixels, unchanged, in a PNG that
    carries the infotext, XMP and C2PA manifest; the asset's image (its download) becomes it.
    The item's own file is never written."""
    source = asset.item.image.name
    try:
        exists = bool(source) and default_storage.exists(source)
    except OSError:
        exists = False
    if not exists:
        raise MasterMissing(f"the master image {source or '(none)'} is missing from storage")
    data = master_with_provenance(asset, source=source)
    name = f"masters/{asset.campaign_id}/{asset.pk}.png"
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    Asset.objects.filter(pk=asset.pk).update(image=saved)
    asset.image.name = saved
    return saved


def _master(asset: Asset) -> Image.Image:
    from review.quality.images import load_image

    name = asset.image.name
    try:
        exists = bool(name) and default_storage.exists(name)
    except OSError:
        exists = False
    if not exists:
        raise MasterMissing(f"the master image {name or '(none)'} is missing from storage")
    try:
        with default_storage.open(name, "rb") as handle:
            return load_image(handle)
    except (OSError, ValueError) as exc:
        raise MasterMissing(f"the master image {name} cannot be read: {exc}") from None


def _rendition_write(
    asset: Asset,
    delivery: Delivery,
    master: Image.Image,
    subject: list,
    channel: str,
    fingerprint: str,
    old: Rendition | None,
) -> str:
    """Make one channel's rendition; returns why it was refused, or "" once made."""
    target = channel_size(channel)
    plan = rendition_plan(master.size, subject, target)
    upscaled = plan.upscale > delivery.max_upscale + 1e-9
    if upscaled and delivery.refuse_upscaled:
        if old is not None:
            _rendition_delete(old)
        return (
            f"needs ×{plan.upscale:.1f} upscaling from the {master.width}×{master.height} "
            f"master, more than the ×{delivery.max_upscale:g} allowed"
        )
    format = channel_format(delivery, channel)
    if format == "avif" and not avif_available():
        raise RuntimeError("AVIF is configured but this Pillow cannot write AVIF")
    image = rendition_image(master, plan, target)
    image, watermarked = watermark_apply(image, delivery, channel)
    data, signed = encode(
        image, format=format, quality=delivery.quality, asset=asset, channel=channel
    )
    name = rendition_path(asset, channel, format)
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if old is not None and old.file.name and old.file.name != saved:
        _file_delete(old.file.name)
    Rendition.objects.update_or_create(
        asset=asset,
        channel=channel,
        defaults={
            "width": target[0],
            "height": target[1],
            "format": format,
            "file": saved,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "crop": list(plan.crop),
            "upscale": round(plan.upscale, 3),
            "upscaled": upscaled,
            "watermarked": watermarked,
            "signed": signed,
            "fingerprint": fingerprint,
        },
    )
    return ""


def _file_delete(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:  # already gone: nothing to remove
        logger.warning("rendition file %s could not be deleted", name)


def _rendition_delete(rendition: Rendition) -> None:
    if rendition.file.name:
        _file_delete(rendition.file.name)
    rendition.delete()


def renditions_remove(*, asset_id) -> int:
    """Remove an asset's renditions, rows and files (before the asset itself is deleted)."""
    renditions = list(Rendition.objects.filter(asset_id=asset_id))
    for rendition in renditions:
        _rendition_delete(rendition)
    return len(renditions)


def asset_delivery_failed(*, asset_id, error: str) -> None:
    """Record why an asset's delivery failed (it is retried); the asset page shows it."""
    asset = Asset.objects.filter(pk=asset_id).only("delivery").first()
    if asset is None:
        return
    state = dict(asset.delivery or {}) | {"error": error, "at": timezone.now().isoformat()}
    Asset.objects.filter(pk=asset_id).update(delivery=state)


# --- Changing the settings --------------------------------------------------------------------


def _number(errors, field, value, *, low, high, kind=float, label=""):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        errors.append(FieldError(field, "must be a number"))
        return None
    if isinstance(number, float) and not math.isfinite(number):
        errors.append(FieldError(field, "must be a number"))
        return None
    if not low <= number <= high:
        errors.append(FieldError(field, label or f"must be between {low:g} and {high:g}"))
        return None
    return number


def _channels(errors, field, value) -> list[str] | None:
    if isinstance(value, str):
        value = value.split(",")
    names, bad = [], []
    for written in value or []:
        if not str(written).strip():
            continue
        try:
            names.append(channel_name(written))
        except InputError as exc:
            bad.append(exc.errors[0].message)
    if bad:
        errors.extend(FieldError(field, message) for message in bad)
        return None
    return list(dict.fromkeys(names))


def delivery_check(delivery: Delivery, values: dict) -> dict:
    """The settings ``values`` would give, validated against the delivery's current ones
    (InputError names every bad field). The logo comes back as PNG bytes under
    ``watermark_logo`` when one was uploaded."""
    errors: list[FieldError] = []
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise InputError("", f"unknown settings: {', '.join(sorted(unknown))}")
    clean: dict = {}
    if "channels" in values:
        clean["channels"] = _channels(errors, "channels", values["channels"])
    if "watermark_channels" in values:
        clean["watermark_channels"] = _channels(
            errors, "watermark_channels", values["watermark_channels"]
        )
    if "formats" in values:
        formats = {}
        for written, format in (values["formats"] or {}).items():
            format = str(format or "").strip().lower()
            if not format:
                continue
            try:
                channel = channel_name(written)
            except InputError as exc:
                errors.append(FieldError("formats", exc.errors[0].message))
                continue
            if format == "jpg":
                format = "jpeg"
            if format not in FORMATS:
                errors.append(
                    FieldError("formats", f"{format!r} is not one of {', '.join(FORMATS)}")
                )
            elif format == "avif" and not avif_available():
                errors.append(
                    FieldError(
                        "formats", "AVIF is not supported by the installed Pillow; choose another"
                    )
                )
            else:
                formats[channel] = format
        clean["formats"] = formats
    if "quality" in values:
        clean["quality"] = _number(errors, "quality", values["quality"], low=1, high=100, kind=int)
    if "max_upscale" in values:
        clean["max_upscale"] = _number(errors, "max_upscale", values["max_upscale"], low=1, high=64)
    if "refuse_upscaled" in values:
        clean["refuse_upscaled"] = bool(values["refuse_upscaled"])
    if "watermark" in values:
        if values["watermark"] not in Delivery.Watermark.values:
            choices = ", ".join(Delivery.Watermark.values)
            errors.append(FieldError("watermark", f"must be one of {choices}"))
        else:
            clean["watermark"] = values["watermark"]
    if "watermark_text" in values:
        text = str(values["watermark_text"] or "").strip()
        if len(text) > 200:
            errors.append(FieldError("watermark_text", "at most 200 characters"))
        clean["watermark_text"] = text
    if "watermark_position" in values:
        if values["watermark_position"] not in Delivery.Position.values:
            choices = ", ".join(Delivery.Position.values)
            errors.append(FieldError("watermark_position", f"must be one of {choices}"))
        else:
            clean["watermark_position"] = values["watermark_position"]
    for field, low, high in (
        ("watermark_margin", 0, 0.4),
        ("watermark_opacity", 0, 1),
        ("watermark_scale", 0.01, 1),
    ):
        if field in values:
            clean[field] = _number(errors, field, values[field], low=low, high=high)
    if values.get("watermark_logo"):
        try:
            clean["watermark_logo"] = watermark_logo_check(values["watermark_logo"])
        except InputError as exc:
            errors.extend(exc.errors)
    mode = clean.get("watermark", delivery.watermark)
    if mode == "text" and not clean.get("watermark_text", delivery.watermark_text):
        errors.append(FieldError("watermark_text", "write the text of a text watermark"))
    if mode == "logo" and not (clean.get("watermark_logo") or delivery.watermark_logo.name):
        errors.append(FieldError("watermark_logo", "upload a logo for a logo watermark"))
    if errors:
        raise InputError(errors)
    return clean


def delivery_update(*, campaign, user, **values) -> Delivery:
    """Change a campaign's delivery settings (any of SETTINGS; ``watermark_logo`` an
    upload). Validates everything first, saves in one transaction with the version bumped,
    and after commit hands the campaign's approved items to the delivery stage, whose
    renditions are then made again."""
    from generation.models import Item

    current = delivery_for(campaign)
    clean = delivery_check(current, values)
    logo = clean.pop("watermark_logo", None)
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(
            campaign=campaign
        ).first() or Delivery(campaign=campaign)
        old_logo = delivery.watermark_logo.name
        for name, value in clean.items():
            setattr(delivery, name, value)
        delivery.version += 1
        delivery.updated_by = user
        if logo is not None:
            delivery.watermark_logo.name = default_storage.save(
                f"delivery/{campaign.pk}/logo-v{delivery.version}.png", ContentFile(logo)
            )
        delivery.save()
        if logo is not None and old_logo:
            transaction.on_commit(lambda: _file_delete(old_logo))
        ids = list(
            Item.objects.filter(campaign=campaign, status=Item.Status.APPROVED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(ids), DELIVER_BATCH):
            queues.enqueue("deliver", ids[start : start + DELIVER_BATCH])
    return delivery
