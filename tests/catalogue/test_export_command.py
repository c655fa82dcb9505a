"""manage.py export_create: the same export as the page, built in-process, written to --out;
exit status 2 with the reason on a bad filter or an empty selection."""

from __future__ import annotations

import json
import zipfile
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalogue.models import Asset, Export
from catalogue.services import entries_sync
from tests.catalogue.exports_support import published


@pytest.fixture
def three(campaign):
    assets = published(campaign, 3)
    entries_sync(item_ids=[a.item_id for a in assets])
    return assets


def test_it_writes_a_campaign_export_to_the_file(campaign, three, tmp_path, handoffs, capsys):
    out = tmp_path / "spring.zip"
    call_command("export_create", "--campaign", str(campaign.pk), "--out", str(out))
    names = zipfile.ZipFile(out).namelist()
    assert "manifest.json" in names and "manifest.csv" in names
    assert len([n for n in names if n.startswith("instagram/")]) == 3
    export = Export.objects.get()
    assert export.status == "ready" and export.campaign == campaign
    assert handoffs == []  # built here, never queued
    assert "3 of 3 images" in capsys.readouterr().out


def test_a_search_with_filters_and_the_game_layout(campaign, three, tmp_path, capsys):
    Asset.objects.filter(pk=three[0].pk).update(rights_until=date(2020, 1, 1))
    out = tmp_path / "search.zip"
    call_command(
        "export_create",
        "--search",
        "sneaker",
        "--filter",
        f"campaign={campaign.pk}",
        "--filter",
        "status=approved",
        "--layout",
        "game-engine",
        "--include-expired",
        "--out",
        str(out),
    )
    zf = zipfile.ZipFile(out)
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["selection"]["search"] == {
        "q": "sneaker",
        "campaign": str(campaign.pk),
        "status": ["approved"],
    }
    assert manifest["layout"] == "game-engine" and manifest["include_expired"]
    assert "assets.json" in zf.namelist()
    assert {row["asset_id"] for row in manifest["rows"]} == {str(a.pk) for a in three}


def test_expired_assets_are_left_out_and_said_so(campaign, three, tmp_path, capsys):
    Asset.objects.filter(pk=three[0].pk).update(rights_until=date(2020, 1, 1))
    call_command("export_create", "--campaign", str(campaign.pk), "--out", str(tmp_path / "x.zip"))
    out = capsys.readouterr().out
    assert "2 of 3 images" in out and "rights expired 2020-01-01" in out


@pytest.mark.parametrize(
    "args, says",
    [
        (["--search", "", "--filter", "min_score=lots"], "--filter min_score: Use a number"),
        (["--search", "", "--filter", "colour=red"], "--filter colour: not a filter"),
        (["--search", "", "--filter", "nonsense"], "is not FIELD=VALUE"),
        (["--search", "helicopter"], "nothing to export"),
        (["--campaign", "00000000-0000-0000-0000-000000000000"], "--campaign: no campaign"),
        (["--campaign", "nope"], "--campaign: no campaign"),
    ],
)
def test_a_bad_filter_or_an_empty_selection_exits_2_with_the_reason(three, tmp_path, args, says):
    with pytest.raises(CommandError) as caught:
        call_command("export_create", *args, "--out", str(tmp_path / "x.zip"))
    assert caught.value.returncode == 2
    assert says in str(caught.value)
    assert not (tmp_path / "x.zip").exists()
    assert Export.objects.count() == 0


def test_an_empty_campaign_exits_2(campaign, tmp_path):
    with pytest.raises(CommandError) as caught:
        call_command(
            "export_create", "--campaign", str(campaign.pk), "--out", str(tmp_path / "x.zip")
        )
    assert caught.value.returncode == 2
    assert "nothing to export" in str(caught.value)
