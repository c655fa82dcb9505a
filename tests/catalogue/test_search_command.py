"""catalogue_search: the page's search and filters on the command line."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalogue.models import Entry
from catalogue.services import asset_publish, entries_sync
from generation.models import Item
from tests.conftest import blur_rejections, route_items


def run(*args) -> str:
    out = io.StringIO()
    call_command("catalogue_search", *args, stdout=out)
    return out.getvalue()


def run_json(*args) -> dict:
    return json.loads(run(*args, "--json"))


def _index(campaign) -> None:
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))


def test_json_is_one_object_with_the_count_results_and_facets(campaign):
    (approved,) = route_items(campaign, to="approved", count=1)
    asset = asset_publish(item_id=approved.pk)
    Item.objects.filter(pk=approved.pk).update(
        loras=[{"name": "style", "version": 2, "weight": 0.8, "sha256": "ab"}]
    )
    _index(campaign)

    out = run_json("--status", "approved")
    entry = Entry.objects.get(pk=approved.pk)

    assert out["count"] == 1
    (row,) = out["results"]
    assert row == {
        "item_id": str(approved.pk),
        "asset_id": str(asset.pk),
        "status": "approved",
        "reasons": entry.reason_codes,
        "title": "SH-1001 · Aero Runner",
        "campaign": str(campaign.pk),
        "model": {"name": "sd15", "version": 1},
        "loras": [{"name": "style", "version": 2, "weight": 0.8}],
        "generated_at": row["generated_at"],
        "score": pytest.approx(approved.quality.overall),
        "cost": float(entry.cost),
        "rights": "internal",
        "rights_until": None,
        "rights_expired": False,
        "asset_status": "published",
        "tags": entry.tag_names,
        "tag_sources": [
            {"tag": t["tag"], "source": t["source"], "score": t.get("score")} for t in entry.tags
        ],
    }
    assert {"sneaker", "red", "mesh"} <= set(row["tags"])
    assert out["facets"]["status"] == {"approved": 1}
    assert out["facets"]["lora"] == {"style:2": 1}
    assert set(out["facets"]) == {
        "status",
        "reason",
        "campaign",
        "model",
        "lora",
        "purpose",
        "rights",
        "month",
    }


def test_an_item_without_an_asset_has_a_null_asset_and_its_csv_tags(campaign):
    _index(campaign)

    out = run_json("sneaker", "--limit", "3")

    assert out["count"] > 3 and len(out["results"]) == 3
    assert all(r["asset_id"] is None for r in out["results"])
    assert all({"sneaker", "footwear"} <= set(r["tags"]) for r in out["results"])
    assert all(
        {"tag": "footwear", "source": "csv", "score": None} in r["tag_sources"]
        for r in out["results"]
    )
    assert all(r["status"] == "queued" for r in out["results"])


def test_rejected_because_of_blur_is_found_exactly_whoever_decided(campaign, reviewer):
    rejected, task = blur_rejections(campaign, reviewer)
    _index(campaign)

    out = run_json("--status", "rejected", "--reason", "blur")

    assert out["count"] == 2
    assert {r["item_id"] for r in out["results"]} == {str(rejected[0].pk), str(task.item_id)}
    assert all("blur" in r["reasons"] for r in out["results"])
    assert out["facets"]["reason"]["blur"] == 2


def test_a_lora_version_in_a_month_is_found_exactly(campaign):
    _index(campaign)
    first = list(campaign.items.order_by("row_index", "variation")[:5])
    Entry.objects.filter(item__in=first).update(
        loras=["style:2"], lora_names=["style"], generated_at="2027-01-15T10:00:00Z"
    )
    Entry.objects.filter(item__in=first[:2]).update(generated_at="2027-02-01T00:30:00Z")
    Entry.objects.exclude(item__in=first).update(
        loras=["style:1"], lora_names=["style"], generated_at="2027-01-15T10:00:00Z"
    )

    out = run_json("--lora", "style:2", "--month", "2027-01", "--limit", "100")

    assert out["count"] == 3
    assert {r["item_id"] for r in out["results"]} == {str(i.pk) for i in first[2:]}
    assert out["facets"]["month"] == {"2027-01": 3}
    assert run_json("--lora", "style", "--month", "2027-01")["count"] == 38
    assert run_json("--lora", "style:3")["count"] == 0


def test_the_text_output_lists_one_line_per_image_and_the_total(campaign):
    _index(campaign)

    lines = run('"trail ranger"').splitlines()

    assert lines[-1] == "2 images"
    assert all("SH-1003" in line for line in lines[:-1]) and len(lines) == 3


@pytest.mark.parametrize(
    ("args", "option", "accepts"),
    [
        (["--status", "lost"], "--status", "queued, running"),
        (["--reason", "ugly"], "--reason", "blur, exposure"),
        (["--since", "2026-13-01"], "--since", "YYYY-MM-DD"),
        (["--until", "yesterday"], "--until", "YYYY-MM-DD"),
        (["--month", "2026-1"], "--month", "YYYY-MM"),
        (["--model", "sd15:v1"], "--model", "NAME:VERSION"),
        (["--lora", "style:two"], "--lora", "NAME:VERSION"),
        (["--campaign", "nope"], "--campaign", "UUID"),
        (["--min-score", "2"], "--min-score", "from 0 to 1"),
        (["--sort", "random"], "--sort", "relevance, newest, score, cost"),
        (["--purpose", "poster"], "--purpose", "hero, variation, thumbnail"),
        (["--rights", "all"], "--rights", "internal"),
        (["--limit", "0"], "--limit", "1 to 500"),
    ],
)
def test_a_bad_option_exits_2_naming_the_option_and_what_it_accepts(db, args, option, accepts):
    with pytest.raises(CommandError) as error:
        run(*args)

    assert error.value.returncode == 2
    assert str(error.value).startswith(f"{option}: ")
    assert accepts in str(error.value)


def test_an_overlong_query_exits_2_naming_the_query(db):
    with pytest.raises(CommandError) as error:
        run("x" * 3000)

    assert error.value.returncode == 2
    assert str(error.value).startswith("QUERY: ")
