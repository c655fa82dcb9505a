"""The managers' report pages: each a filter form, tables (each also a CSV download) and
charts drawn from the same tables (Chart.js, vendored)."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from catalogue.reports import selectors, tables
from catalogue.reports.forms import CampaignValueForm, ReportFilterForm
from catalogue.reports.services import campaign_value_set
from catalogue.reports.versions import KINDS, version_activate, version_lines
from catalogue.text import csv_cell
from generation.costs import money
from generation.models import Campaign
from studio.errors import InputError
from studio.roles import ADMIN, MANAGER, role_required

PAGES = [
    ("reports:overview", "Overview"),
    ("reports:campaigns", "Campaigns"),
    ("reports:recipes", "Recipes and models"),
    ("reports:prompts", "Prompts"),
    ("reports:hosting", "Self-hosting or API"),
    ("reports:versions", "Versions"),
]


def _csv(table: tables.Table, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return response


def _filters(request: HttpRequest) -> tuple[ReportFilterForm, dict]:
    form = ReportFilterForm(request.GET or None)
    if request.GET and form.is_valid():
        return form, form.cleaned_data
    return form, {}


def _render(request, template: str, form, page_tables: list[tables.Table], context: dict):
    wanted = request.GET.get("csv")
    if wanted and not form.errors:
        for table in page_tables:
            if table.name == wanted:
                month = context.get("period_label", "").replace(" ", "-").lower()
                return _csv(table, f"studio-{table.name}-{month or 'all-time'}")
    query = request.GET.copy()
    query.pop("csv", None)
    return render(
        request,
        template,
        {
            "form": form,
            "tables": page_tables,
            "pages": PAGES,
            "query": query.urlencode(),
            **context,
        },
    )


@require_GET
@role_required(MANAGER, ADMIN)
def overview(request: HttpRequest) -> HttpResponse:
    form, f = _filters(request)
    data = selectors.report_overview(month=f.get("month"))
    return _render(
        request,
        "reports/overview.html",
        form,
        tables.overview_tables(data) if not form.errors else [],
        {"data": data, "period_label": f"{data['month']:%Y-%m}"},
    )


@require_GET
@role_required(MANAGER, ADMIN)
def campaigns(request: HttpRequest) -> HttpResponse:
    form, f = _filters(request)
    period = selectors.Period(month=f.get("month"), campaign_id=f.get("campaign"))
    rows = selectors.report_campaigns(period=period) if not form.errors else []
    return _render(
        request,
        "reports/campaigns.html",
        form,
        tables.campaign_tables(rows),
        {
            "rows": rows,
            "period_label": period.label,
            "value_form": CampaignValueForm(),
            "spend_total_display": money(sum((r["cost"] for r in rows), selectors.ZERO)),
        },
    )


@require_POST
@role_required(MANAGER, ADMIN)
def campaign_value(request: HttpRequest, pk) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = CampaignValueForm(request.POST)
    back = request.POST.get("next") or ""
    target = reverse("reports:campaigns") + (
        "?" + back if back and not back.startswith(("/", "http")) else ""
    )
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else field
            messages.error(request, f"{label}: {' '.join(errors)}")
        return redirect(target)
    campaign_value_set(
        campaign=campaign,
        value_per_image=form.cleaned_data["value_per_image"],
        note=form.cleaned_data["note"],
        user=request.user,
    )
    messages.success(request, f"Value per approved image set for {campaign.name}.")
    return redirect(target)


@require_GET
@role_required(MANAGER, ADMIN)
def recipes(request: HttpRequest) -> HttpResponse:
    form, f = _filters(request)
    period = selectors.Period(month=f.get("month"), campaign_id=f.get("campaign"))
    bar = (f.get("bar") or 70) / 100
    data = selectors.report_combinations(
        period=period, bar=bar, min_images=f.get("min_images") or 10
    )
    best = data["recommendation"]
    if best:
        best = {
            **best,
            "acceptance_pct": tables.pct(best["acceptance"]),
            "cost_per_approved_display": money(best["cost_per_approved"], 4),
        }
    return _render(
        request,
        "reports/recipes.html",
        form,
        tables.combination_tables(data) if not form.errors else [],
        {
            "data": {**data, "recommendation": best},
            "period_label": period.label,
            "bar_pct": tables.pct(bar),
        },
    )


@require_GET
@role_required(MANAGER, ADMIN)
def prompts(request: HttpRequest) -> HttpResponse:
    form, f = _filters(request)
    period = selectors.Period(month=f.get("month"), campaign_id=f.get("campaign"))
    data = selectors.report_prompts(period=period, min_images=f.get("min_images") or 5)
    return _render(
        request,
        "reports/prompts.html",
        form,
        tables.prompt_tables(data) if not form.errors else [],
        {"data": data, "period_label": period.label},
    )


@require_GET
@role_required(MANAGER, ADMIN)
def hosting(request: HttpRequest) -> HttpResponse:
    form, f = _filters(request)
    data = selectors.report_hosting(month=f.get("month"))
    return _render(
        request,
        "reports/hosting.html",
        form,
        tables.hosting_tables(data) if not form.errors else [],
        {
            "data": data,
            "period_label": f"{data['month']:%Y-%m}",
            "fixed": {
                "price": money(data["gpu_price"]),
                "monthly": money(data["fixed_monthly"]),
                "kwh": money(data["kwh_price"], 4),
                "own_per_image": money(data["own_per_image"], 4),
                "api_per_image": money(data["api_per_image"], 4),
            },
            "api_prices": [(m, money(p, 4)) for m, p in data["api_prices"].items()],
        },
    )


@require_GET
@role_required(MANAGER, ADMIN)
def versions(request: HttpRequest) -> HttpResponse:
    sections = [(kind, label, version_lines(kind)) for kind, (label, _, _) in KINDS.items()]
    return render(request, "reports/versions.html", {"sections": sections, "pages": PAGES})


@require_POST
@role_required(MANAGER, ADMIN)
def version_activate_view(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    if kind not in KINDS:
        raise Http404("No such kind of version.")
    try:
        version, previous = version_activate(kind=kind, pk=pk, user=request.user)
    except ObjectDoesNotExist:
        raise Http404("No such version.") from None
    except InputError as error:
        messages.error(request, " ".join(error.messages()))
        return redirect("reports:versions")
    name = version.template.name if kind == "template" else version.name
    if previous is None:
        messages.info(request, f"{name} v{version.version} was already the active version.")
    else:
        verb = "Rolled back" if version.version < previous.version else "Moved"
        messages.success(
            request,
            f"{verb} {name} to v{version.version} (was v{previous.version}): new campaigns "
            "use it; running ones keep the versions they pinned.",
        )
    return redirect(reverse("reports:versions") + f"#{kind}-{name}")
