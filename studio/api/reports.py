"""The managers' reports as JSON: the same filter form and the same tables the report pages
draw and offer as CSV downloads."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from ninja import Router, Schema

from catalogue.reports import selectors, tables
from catalogue.reports.forms import ReportFilterForm
from studio.api.core import form_errors, problem, require, scoped

router = Router(tags=["reports"])


class TableOut(Schema):
    name: str
    title: str
    headers: list[str]
    rows: list[list[Any]]


class ReportOut(Schema):
    report: str
    period: str
    tables: list[TableOut]


def _tables(report: str, f: dict) -> tuple[str, list]:
    period = selectors.Period(month=f.get("month"), campaign_id=f.get("campaign"))
    if report == "overview":
        data = selectors.report_overview(month=f.get("month"))
        return f"{data['month']:%Y-%m}", tables.overview_tables(data)
    if report == "campaigns":
        return period.label, tables.campaign_tables(selectors.report_campaigns(period=period))
    if report == "recipes":
        data = selectors.report_combinations(
            period=period, bar=(f.get("bar") or 70) / 100, min_images=f.get("min_images") or 10
        )
        return period.label, tables.combination_tables(data)
    if report == "prompts":
        data = selectors.report_prompts(period=period, min_images=f.get("min_images") or 5)
        return period.label, tables.prompt_tables(data)
    data = selectors.report_hosting(month=f.get("month"))
    return f"{data['month']:%Y-%m}", tables.hosting_tables(data)


def _report(request, report: str):
    require(request, "reports:read")
    form = ReportFilterForm(request.GET)
    if not form.is_valid():
        return problem(422, "the filters are not valid", errors=form_errors(form, where="query"))
    label, found = _tables(report, form.cleaned_data)
    body = {
        "report": report,
        "period": label,
        "tables": [
            {"name": t.name, "title": t.title, "headers": t.headers, "rows": t.rows} for t in found
        ],
    }
    return json.loads(json.dumps(body, cls=DjangoJSONEncoder))


DESCRIPTION = "Query: month (YYYY-MM), campaign (id), bar (acceptance %), min_images."


@router.get(
    "/reports/overview", response=ReportOut, auth=scoped("reports:read"), description=DESCRIPTION
)
def overview(request):
    return _report(request, "overview")


@router.get(
    "/reports/campaigns", response=ReportOut, auth=scoped("reports:read"), description=DESCRIPTION
)
def campaigns(request):
    return _report(request, "campaigns")


@router.get(
    "/reports/recipes", response=ReportOut, auth=scoped("reports:read"), description=DESCRIPTION
)
def recipes(request):
    return _report(request, "recipes")


@router.get(
    "/reports/prompts", response=ReportOut, auth=scoped("reports:read"), description=DESCRIPTION
)
def prompts(request):
    return _report(request, "prompts")


@router.get(
    "/reports/hosting", response=ReportOut, auth=scoped("reports:read"), description=DESCRIPTION
)
def hosting(request):
    return _report(request, "hosting")
