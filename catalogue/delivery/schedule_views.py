"""The posting schedule of a campaign: a page with its published variations by CSV row and
its slots by week, a form to add a slot, and the CSV and iCalendar exports.

Every role may read a schedule and download it (reviewers too: it is what gets posted);
creatives, managers and admins change it."""

from __future__ import annotations

from functools import cache
from itertools import groupby
from zoneinfo import available_timezones

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from catalogue.delivery.schedule import (
    posting_slot_create,
    posting_slot_delete,
    schedule_csv,
    schedule_ics,
    schedule_platforms,
    schedule_rows,
    schedule_slots,
    slot_file,
    slot_local,
)
from generation.models import Campaign
from studio.errors import InputError
from studio.roles import ADMIN, ALL_ROLES, CREATIVE, MANAGER, has_role, role_required

EDITORS = (CREATIVE, MANAGER, ADMIN)


class SlotForm(forms.Form):
    """Raw values; posting_slot_create checks them all and names the field of each problem."""

    asset = forms.CharField(required=False)
    platform = forms.CharField(required=False)
    date = forms.CharField(required=False)
    time = forms.CharField(required=False)
    time_zone = forms.CharField(required=False)
    caption = forms.CharField(required=False, widget=forms.Textarea)


def _get_campaign_for_user(request: HttpRequest, pk) -> Campaign:
    """Every role may read every campaign; the decorator already checked the role."""
    return get_object_or_404(Campaign, pk=pk)


def _weeks(slots: list) -> list[tuple[str, list]]:
    """The slots by ISO week of their local date, each slot with its local time and file."""
    for slot in slots:
        slot.local = slot_local(slot)
        slot.file_name = slot_file(slot)
    weeks = []
    for (year, week), group in groupby(slots, key=lambda s: s.local.isocalendar()[:2]):
        weeks.append((f"{year}-W{week:02d}", list(group)))
    return weeks


@cache
def _time_zones() -> list[str]:
    """The IANA names offered in the form (reading them scans the zone database)."""
    return sorted(available_timezones())


def _page(request: HttpRequest, campaign: Campaign, form: SlotForm, *, status: int = 200):
    rows = schedule_rows(campaign)
    context = {
        "campaign": campaign,
        "rows": rows,
        "weeks": _weeks(schedule_slots(campaign)),
        "platforms": schedule_platforms(campaign),
        "form": form,
        "may_edit": has_role(request.user, *EDITORS),
        "time_zones": _time_zones(),
    }
    return render(request, "catalogue/schedule.html", context, status=status)


@require_GET
@role_required(*ALL_ROLES)
def schedule(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    form = SlotForm(initial={"time_zone": settings.TIME_ZONE, "time": "09:00"})
    return _page(request, campaign, form)


@require_POST
@role_required(*EDITORS)
def schedule_add(request: HttpRequest, pk) -> HttpResponse:
    """Add a slot; bad input is a 400 with the message on its field, and nothing is saved."""
    campaign = _get_campaign_for_user(request, pk)
    form = SlotForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            slot = posting_slot_create(
                campaign=campaign,
                asset_id=data["asset"],
                platform=data["platform"],
                day=data["date"],
                at=data["time"],
                time_zone=data["time_zone"],
                caption=data["caption"],
                user=request.user,
            )
        except InputError as exc:
            for problem in exc.errors:
                field = problem.field if problem.field in form.fields else None
                form.add_error(field, problem.message)
        else:
            local = slot_local(slot)
            messages.success(
                request,
                f"{slot.asset.ab_label} scheduled on {slot.platform} at "
                f"{local:%Y-%m-%d %H:%M} {slot.time_zone}.",
            )
            return redirect("catalogue:schedule", pk=campaign.pk)
    return _page(request, campaign, form, status=400)


@require_POST
@role_required(*EDITORS)
def schedule_delete(request: HttpRequest, pk, slot_pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    if posting_slot_delete(campaign=campaign, slot_id=slot_pk):
        messages.success(request, "Slot removed.")
    else:
        messages.warning(request, "That slot was already removed.")
    return redirect("catalogue:schedule", pk=campaign.pk)


def _attachment(body: str, *, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _file_stem(campaign: Campaign) -> str:
    return f"{slugify(campaign.name) or 'campaign'}-schedule"


@require_GET
@role_required(*ALL_ROLES)
def schedule_csv_download(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    return _attachment(
        schedule_csv(campaign),
        content_type="text/csv; charset=utf-8",
        name=f"{_file_stem(campaign)}.csv",
    )


@require_GET
@role_required(*ALL_ROLES)
def schedule_ics_download(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    body = schedule_ics(
        campaign,
        host=request.get_host(),
        base_url=f"{request.scheme}://{request.get_host()}",
    )
    return _attachment(
        body, content_type="text/calendar; charset=utf-8", name=f"{_file_stem(campaign)}.ics"
    )
