"""Each report as tables of plain cells: what the pages show, the CSV downloads hold and the
charts draw, from one definition. Money is rounded here, once, for people."""

from __future__ import annotations

from dataclasses import dataclass, field

from generation.costs import money
from generation.models import CostEntry

KINDS = CostEntry.Kind


@dataclass
class Table:
    name: str  # also the CSV file's name
    title: str
    headers: list[str]
    rows: list[list] = field(default_factory=list)
    chart: dict | None = None  # Chart.js config data: {"type", "labels", "datasets"}
    empty: str = "No data for this period."

    @property
    def chart_id(self) -> str:
        return f"chart-{self.name}"


def pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def hours(value) -> str:
    return "—" if value is None else f"{value:.1f} h"


def overview_tables(data: dict) -> list[Table]:
    o = data["outcome"]
    summary = Table(
        "overview",
        f"{data['month']:%B %Y}",
        ["Measure", "Value"],
        [
            ["Spend", money(data["spend"])],
            ["Budget", money(data["budget"]) if data["budget"] is not None else "none set"],
            ["Budget used", pct(data["budget_used"])],
            *[[f"Spend: {label}", money(data["spend_by_kind"][k])] for k, label in KINDS.choices],
            ["Images", o["images"]],
            ["Approved", o["approved"]],
            ["Cost per approved image", money(o["cost_per_approved"], 4)],
            ["Acceptance (approved / judged)", pct(o["acceptance"])],
            ["Auto-approved", o["auto_approved"]],
            ["Approved by reviewers", o["review_approved"]],
            ["Rejected", o["rejected"]],
            ["Failed", o["failed"]],
            ["In progress", o["in_progress"]],
            ["Cancelled", o["cancelled"]],
            ["Review hours", hours(data["review_hours"])],
        ],
    )
    trend = data["trend"]
    by_month = Table(
        "trend",
        "By month",
        ["Month", "Spend", "Approved", "Acceptance", "Cost per approved image"],
        [
            [
                f"{r['month']:%Y-%m}",
                money(r["spend"]),
                r["approved"],
                pct(r["acceptance"]),
                money(r["cost_per_approved"], 4),
            ]
            for r in trend
        ],
        chart={
            "type": "bar",
            "labels": [f"{r['month']:%Y-%m}" for r in trend],
            "datasets": [
                {"label": "Spend", "data": [float(r["spend"]) for r in trend]},
                {"label": "Approved images", "data": [r["approved"] for r in trend], "axis": "y1"},
            ],
        },
    )
    roi = data["roi_by_month"]
    by_roi = Table(
        "roi",
        "ROI by month (campaigns with a value per image)",
        ["Month", "Value of approved images", "Cost", "ROI"],
        [[f"{r['month']:%Y-%m}", money(r["value"]), money(r["cost"]), pct(r["roi"])] for r in roi]
        if any(r["value"] or r["cost"] for r in roi)
        else [],
        empty="Set the value of an approved image on the Campaigns report to see ROI.",
    )
    return [summary, by_month, by_roi]


def campaign_tables(rows: list[dict]) -> list[Table]:
    kinds = KINDS.choices
    table = Table(
        "campaigns",
        "Campaigns",
        [
            "Campaign",
            "Status",
            "Images",
            "Approved",
            "Rejected",
            "Rejected by reason",
            "Failed",
            *[f"Cost: {label}" for _, label in kinds],
            "Cost",
            "Cost per approved image",
            "Hours to finish",
            "Value per image",
            "ROI",
        ],
        [
            [
                r["name"],
                r["status"],
                r["images"],
                r["approved"],
                r["rejected"],
                ", ".join(f"{code} {n}" for code, n in r["rejected_by_reason"].items()) or "—",
                r["failed"],
                *[money(r["cost_by_kind"][k]) for k, _ in kinds],
                money(r["cost"]),
                money(r["cost_per_approved"], 4),
                hours(r["hours_to_finish"]),
                money(r["value_per_image"]) if r["value_per_image"] is not None else "not set",
                pct(r["roi"]),
            ]
            for r in rows
        ],
        chart={
            "type": "bar",
            "labels": [r["name"] for r in rows[:20]],
            "datasets": [
                {"label": label, "data": [float(r["cost_by_kind"][k]) for r in rows[:20]]}
                for k, label in kinds
            ],
            "stacked": True,
        },
    )
    return [table]


def _combination_table(name: str, title: str, rows: list[dict]) -> Table:
    return Table(
        name,
        title,
        [
            "Recipe" if name == "recipes" else "Model + LoRAs",
            "Judged",
            "Acceptance",
            "Mean quality",
            "Cost per approved image",
            "Seconds per image",
            "Failed",
        ],
        [
            [
                r["label"],
                r["judged"],
                pct(r["acceptance"]),
                "—" if r["mean_score"] is None else f"{r['mean_score']:.2f}",
                money(r["cost_per_approved"], 4),
                "—" if r["seconds"] is None else f"{r['seconds']:.2f}",
                r["failed"],
            ]
            for r in rows
        ],
        chart={
            "type": "bar",
            "labels": [r["label"] for r in rows[:20]],
            "datasets": [
                {
                    "label": "Acceptance %",
                    "data": [round((r["acceptance"] or 0) * 100, 1) for r in rows[:20]],
                },
                {
                    "label": "Cost per approved image",
                    "data": [float(r["cost_per_approved"] or 0) for r in rows[:20]],
                    "axis": "y1",
                },
            ],
        },
    )


def combination_tables(data: dict) -> list[Table]:
    return [
        _combination_table("recipes", "Recipes", data["recipes"]),
        _combination_table("combinations", "Model + LoRA combinations", data["combinations"]),
    ]


def _reasons(reasons: list[dict]) -> str:
    return ", ".join(f"{r['label']} ({r['count']})" for r in reasons) or "—"


def prompt_tables(data: dict) -> list[Table]:
    templates = Table(
        "templates",
        "Template versions",
        ["Template version", "Judged", "Approved", "Rejected", "Acceptance", "Top reject reasons"],
        [
            [
                r["label"],
                r["judged"],
                r["approved"],
                r["rejected"],
                pct(r["acceptance"]),
                _reasons(r["top_reasons"]),
            ]
            for r in data["templates"]
        ],
    )
    fields = Table(
        "fields",
        "CSV field values, worst first",
        ["Field value", "Judged", "Approved", "Rejected", "Acceptance", "Top reject reasons"],
        [
            [
                r["label"],
                r["judged"],
                r["approved"],
                r["rejected"],
                pct(r["acceptance"]),
                _reasons(r["top_reasons"]),
            ]
            for r in data["fields"]
        ],
        chart={
            "type": "bar",
            "labels": [r["label"] for r in data["fields"][:20]],
            "datasets": [
                {
                    "label": "Acceptance %",
                    "data": [round(r["acceptance"] * 100, 1) for r in data["fields"][:20]],
                }
            ],
        },
        empty=f"No field value has {data['min_images']} judged images yet.",
    )
    return [templates, fields]


def hosting_tables(data: dict) -> list[Table]:
    volume = data["volume"]
    table = Table(
        "hosting",
        f"Self-hosting or API, {data['month']:%B %Y}",
        ["Option", "Fixed per month", "Per image", f"Monthly at {volume:,} images"],
        [
            [
                "Own GPU",
                money(data["fixed_monthly"]),
                money(data["own_per_image"], 4),
                money(data["own_monthly"]),
            ],
            ["API", money(0), money(data["api_per_image"], 4), money(data["api_monthly"])],
        ],
        chart={
            "type": "bar",
            "labels": ["Own GPU", "API"],
            "datasets": [
                {
                    "label": f"Monthly cost at {volume:,} images",
                    "data": [float(data["own_monthly"]), float(data["api_monthly"])],
                }
            ],
        },
    )
    return [table]
