"""Posting schedules for social campaigns: the published variations of each CSV row, labelled
A, B, C... for A/B tests, given a slot per platform and time; written out as CSV and as an
iCalendar file (RFC 5545, written here: a few lines do not need a dependency)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from catalogue.models import Asset, PostingSlot, Rendition
from catalogue.text import csv_cell
from generation.models import Campaign
from generation.sizes import CHANNELS, platform_channel
from studio.errors import FieldError, InputError

# A row's caption: the first of these columns that has a value (case-insensitive).
CAPTION_COLUMNS = (
    "caption",
    "text",
    "copy",
    "post_text",
    "post_copy",
    "message",
    "body",
    "description",
)
CAPTION_MAX = 5000  # above every platform's own limit (LinkedIn 3,000, TikTok 2,200)
CSV_HEADER = [
    "date",
    "time",
    "time_zone",
    "utc_time",
    "platform",
    "asset_id",
    "label",
    "title",
    "caption",
    "file",
]
PRODID = "-//Studio//Posting schedule//EN"


# --- Reads -----------------------------------------------------------------------------------


def row_caption(fields: dict) -> str:
    """The caption the CSV row gives (its caption/text/copy... column), or ""."""
    lowered = {str(k).strip().lower(): v for k, v in (fields or {}).items()}
    for column in CAPTION_COLUMNS:
        value = lowered.get(column)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def schedule_platforms(campaign: Campaign) -> list[str]:
    """The platforms a slot may name: the campaign's channels and its rows' platforms first,
    then every known channel."""
    names: list[str] = []
    wanted = list(campaign.channels or [])
    wanted += (
        campaign.items.exclude(channel="").values_list("channel", flat=True).order_by().distinct()
    )
    for name in [*wanted, *CHANNELS]:
        name = str(name).strip().lower()
        if name and name not in names:
            names.append(name)
    return names


@dataclass
class ScheduleRow:
    """One CSV row of the campaign with its published variations."""

    index: int  # 0-based, as Item.row_index
    fields: dict
    caption: str
    assets: list[Asset] = field(default_factory=list)


def _published(campaign: Campaign):
    return Asset.objects.filter(campaign=campaign, status=Asset.Status.PUBLISHED)


def schedule_rows(campaign: Campaign) -> list[ScheduleRow]:
    """The campaign's published assets grouped by CSV row, in row then variation order."""
    rows: dict[int, ScheduleRow] = {}
    assets = (
        _published(campaign).select_related("item").order_by("item__row_index", "item__variation")
    )
    for asset in assets:
        index = asset.item.row_index
        if index not in rows:
            rows[index] = ScheduleRow(
                index=index, fields=asset.fields, caption=row_caption(asset.fields)
            )
        rows[index].assets.append(asset)
    return list(rows.values())


def schedule_slots(campaign: Campaign, *, published_only: bool = False) -> list[PostingSlot]:
    """The campaign's slots in time order, with their asset, item and renditions loaded."""
    slots = PostingSlot.objects.filter(asset__campaign=campaign)
    if published_only:
        slots = slots.filter(asset__status=Asset.Status.PUBLISHED)
    return list(
        slots.select_related("asset__item").prefetch_related(
            Prefetch(
                "asset__renditions", queryset=Rendition.objects.only("asset", "channel", "file")
            )
        )
    )


def slot_local(slot: PostingSlot) -> datetime:
    """The slot's time in the time zone it was given in."""
    try:
        return slot.starts_at.astimezone(ZoneInfo(slot.time_zone))
    except (ZoneInfoNotFoundError, ValueError):
        return slot.starts_at.astimezone(UTC)


def slot_file(slot: PostingSlot) -> str:
    """The file name of the asset's rendition for the slot's platform, or ""."""
    for rendition in slot.asset.renditions.all():
        if rendition.channel == slot.platform and rendition.file:
            return PurePosixPath(rendition.file.name).name
    return ""


def slot_summary(slot: PostingSlot) -> str:
    return f"{slot.platform}: {slot.asset.ab_label} {slot.asset.title}"


# --- Writes ----------------------------------------------------------------------------------


def _time_zone(name: str) -> ZoneInfo:
    name = (name or "").strip()
    if not name:
        raise InputError("time_zone", "give an IANA time zone, e.g. Europe/Paris or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            "time_zone", f"{name!r} is not an IANA time zone (e.g. Europe/Paris, Asia/Tokyo, UTC)"
        ) from None


def _date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not str(value or "").strip():
        raise InputError("date", "give the date to post on (YYYY-MM-DD)")
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError("date", f"{value!r} is not a date (YYYY-MM-DD)") from None


def _time(value) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if not str(value or "").strip():
        raise InputError("time", "give the time to post at (HH:MM, 24-hour)")
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", str(value).strip())
    try:
        if not match:
            raise ValueError
        return time(int(match[1]), int(match[2]), int(match[3] or 0))
    except ValueError:
        raise InputError("time", f"{value!r} is not a time (HH:MM, 24-hour)") from None


def slot_start(*, day, at, time_zone: str) -> tuple[datetime, str]:
    """(the UTC instant, the zone's name) for a local date and time in an IANA time zone.
    A time the clocks skip (the spring-forward gap) is refused; a time that happens twice
    (autumn) is the first of the two."""
    errors: list[FieldError] = []
    parsed: dict = {}
    for name, parse, value in (
        ("date", _date, day),
        ("time", _time, at),
        ("time_zone", _time_zone, time_zone),
    ):
        try:
            parsed[name] = parse(value)
        except InputError as exc:
            errors += exc.errors
    if errors:
        raise InputError(errors)
    zone = parsed["time_zone"]
    local = datetime.combine(parsed["date"], parsed["time"], tzinfo=zone)
    starts_at = local.astimezone(UTC)
    if starts_at.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise InputError(
            "time",
            f"{parsed['time']:%H:%M} does not exist in {zone.key} on {parsed['date']:%Y-%m-%d} "
            "(the clocks go forward); choose another time",
        )
    return starts_at, zone.key


def posting_slot_create(
    *,
    campaign: Campaign,
    asset_id,
    platform: str,
    day,
    at,
    time_zone: str,
    caption: str | None = None,
    user=None,
) -> PostingSlot:
    """Give a published asset of ``campaign`` a posting slot on ``platform`` at a local date
    and time in ``time_zone``; ``caption`` None or blank takes the row's caption. Every
    problem is found first and raised as one InputError naming the fields; a slot already
    taken (same asset, platform and instant) is refused and nothing is written."""
    errors: list[FieldError] = []
    asset = None
    try:
        asset = _published(campaign).select_related("item").get(pk=uuid.UUID(str(asset_id)))
    except (ValueError, TypeError, Asset.DoesNotExist):
        errors.append(FieldError("asset", "choose a published image of this campaign"))
    name = ""
    try:
        name = platform_channel(platform or "")
    except InputError:
        pass
    known = schedule_platforms(campaign)
    if not (platform or "").strip():
        errors.append(FieldError("platform", "choose a platform"))
    elif name not in known:
        errors.append(
            FieldError(
                "platform",
                f"{(platform or '').strip()!r} is not a platform of this campaign "
                f"(known: {', '.join(known)})",
            )
        )
    try:
        starts_at, zone = slot_start(day=day, at=at, time_zone=time_zone)
    except InputError as exc:
        errors += exc.errors
    text = (caption or "").replace("\r\n", "\n").strip()
    if len(text) > CAPTION_MAX:
        errors.append(
            FieldError("caption", f"at most {CAPTION_MAX} characters ({len(text)} given)")
        )
    if errors:
        raise InputError(errors)
    if not text:
        text = row_caption(asset.fields)
    taken = InputError(
        "",
        f"{asset.ab_label} ({asset.title}) is already scheduled on {name} at "
        f"{starts_at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}",
    )
    if PostingSlot.objects.filter(asset=asset, platform=name, starts_at=starts_at).exists():
        raise taken
    try:
        with transaction.atomic():
            return PostingSlot.objects.create(
                asset=asset,
                platform=name,
                starts_at=starts_at,
                time_zone=zone,
                caption=text,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
    except IntegrityError:  # the same slot added at the same moment by someone else
        raise taken from None


def posting_slot_delete(*, campaign: Campaign, slot_id) -> bool:
    """Remove a slot of ``campaign``; False when there is none (already removed)."""
    try:
        slot_uuid = uuid.UUID(str(slot_id))
    except ValueError:
        return False
    deleted, _ = PostingSlot.objects.filter(pk=slot_uuid, asset__campaign=campaign).delete()
    return bool(deleted)


# --- CSV -------------------------------------------------------------------------------------


def schedule_csv(campaign: Campaign) -> str:
    """The schedule as CSV: one row per slot of a published asset, in time order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for slot in schedule_slots(campaign, published_only=True):
        local = slot_local(slot)
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    f"{local:%Y-%m-%d}",
                    f"{local:%H:%M}",
                    slot.time_zone,
                    slot.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    slot.platform,
                    slot.asset_id,
                    slot.asset.ab_label,
                    slot.asset.title,
                    slot.caption,
                    slot_file(slot),
                )
            ]
        )
    return buffer.getvalue()


# --- iCalendar (RFC 5545) --------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def ics_text(value: str) -> str:
    """An RFC 5545 TEXT value: backslash, semicolon, comma and newlines escaped; other
    control characters (not allowed in TEXT) dropped."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return _CONTROL.sub("", text.replace("\n", "\\n"))


def ics_fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 3.1): CRLF plus a space before each
    continuation, never inside a UTF-8 sequence; the result ends with CRLF."""
    parts: list[str] = []
    current, size, limit = [], 0, 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append("".join(current))
            # The leading space of a continuation line counts towards its 75 octets.
            current, size, limit = [], 1, 75
        current.append(char)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts) + "\r\n"


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def schedule_ics(campaign: Campaign, *, host: str, base_url: str = "") -> str:
    """The schedule as an iCalendar file: one VEVENT per slot of a published asset, at its
    instant in UTC, with a UID (slot id @ host) that stays the same between exports so a
    calendar that imports it again updates events instead of doubling them."""
    host = (host or "studio.invalid").split(":")[0] or "studio.invalid"
    # With METHOD, DTSTAMP is when this file was made (RFC 5545 3.8.7.2).
    stamp = _ics_time(timezone.now())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_text(f'{campaign.name}: posting schedule')}",
    ]
    for slot in schedule_slots(campaign, published_only=True):
        lines += [
            "BEGIN:VEVENT",
            f"UID:{slot.pk}@{host}",
            f"DTSTAMP:{stamp}",
            f"CREATED:{_ics_time(slot.created_at)}",
            f"DTSTART:{_ics_time(slot.starts_at)}",
            f"SUMMARY:{ics_text(slot_summary(slot))}",
            f"DESCRIPTION:{ics_text(slot.caption)}",
            f"CATEGORIES:{ics_text(slot.platform)}",
            f"X-STUDIO-TIME-ZONE:{ics_text(slot.time_zone)}",
        ]
        if base_url:
            path = reverse("catalogue:asset", args=[slot.asset_id])
            lines.append(f"URL:{base_url.rstrip('/')}{path}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) for line in lines)
