"""Exports: the selection, the zip and its manifests, both layouts, rights, progress, the
claim, the reconciler and the export.ready event."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from catalogue.delivery import exports as exports_module
from catalogue.delivery.exports import export_build, export_create, exports_reconcile
from catalogue.jobs import build_export
from catalogue.models import Asset, Entry, Export, Rendition
from catalogue.services import asset_download_name, asset_withdraw, entries_sync
from studio.errors import InputError
from studio.models import WebhookEvent, WebhookSubscription
from tests.catalogue.exports_support import Zip, game_campaign, published, rendition_for


def _built(export: Export) -> Export:
    build_export([str(export.pk)])
    export.refresh_from_db()
    return export


@pytest.fixture
def three(campaign):
    return published(campaign, 3)


def test_a_campaign_export_zips_every_rendition_with_both_manifests_matching_the_files(
    campaign, creative, three, handoffs
):
    export = export_create(user=creative, campaign=campaign)
    assert export.status == Export.Status.QUEUED and export.total == 3
    export = _built(export)

    assert export.status == Export.Status.READY
    assert export.file.name == f"exports/{export.pk}.zip"
    assert export.done == export.total == 3
    assert export.expires_at - export.finished_at == timedelta(days=7)
    got = Zip(export)
    assert export.bytes == len(got.data)
    assert len(got.files()) == 6
    assert {name.split("/")[0] for name in got.files()} == {"instagram", "web-thumbnail"}
    rows = got.manifest["rows"]
    assert len(rows) == len(got.rows) == 6
    for row, csv_row in zip(rows, got.rows, strict=True):
        assert row["path"] in got.names
        assert hashlib.sha256(got.read(row["path"])).hexdigest() == row["sha256"]
        assert csv_row["sha256"] == row["sha256"] and csv_row["path"] == row["path"]
        assert csv_row["asset_id"] == row["asset_id"]
        assert row["fields"]["sku"] == csv_row["csv.sku"]
    first = next(r for r in got.rows if r["asset_id"] == str(three[0].pk))
    assert first["item_id"] == str(three[0].item_id)
    assert first["csv.name"] == three[0].fields["name"]
    assert {"width", "height", "format", "tags", "rights", "rights_until"} <= set(first)
    assert got.manifest["selection"] == {"campaign": str(campaign.pk)}
    assert got.manifest["left_out"] == []


def test_the_file_paths_are_by_channel_with_the_assets_human_names(campaign, creative, three):
    asset = three[0]
    export = _built(export_create(user=creative, campaign=campaign))
    names = Zip(export).files()
    assert "instagram/SH-1001-aero-runner-red-v1.jpg" in names
    assert "web-thumbnail/SH-1001-aero-runner-red-v1.webp" in names
    assert asset.fields["sku"] == "SH-1001"


def test_csv_cells_that_would_start_a_formula_are_neutralised(campaign, creative, three):
    Asset.objects.filter(pk=three[0].pk).update(
        fields=three[0].fields | {"name": '=HYPERLINK("http://x")', "color": "+1", "sku": "@x"},
        title="-2+3",
    )
    got = Zip(_built(export_create(user=creative, campaign=campaign)))
    row = next(r for r in got.rows if r["asset_id"] == str(three[0].pk))
    assert row["csv.name"] == '\'=HYPERLINK("http://x")'
    assert row["csv.color"] == "'+1"
    assert row["title"] == "'-2+3"
    # manifest.json keeps the values as they are: it is data, not a spreadsheet.
    (json_row, *_) = [r for r in got.manifest["rows"] if r["asset_id"] == str(three[0].pk)]
    assert json_row["title"] == "-2+3"


def test_upscaled_renditions_say_so_in_the_manifests(campaign, creative):
    (asset,) = published(campaign, 1, channels=())
    rendition_for(asset, "tiktok", size=(54, 96), upscale=3.0)
    got = Zip(_built(export_create(user=creative, campaign=campaign)))
    assert got.rows[0]["upscaled"] == "×3.0"
    assert got.manifest["rows"][0]["width"] == 54


def test_the_game_engine_layout_has_folders_per_asset_type_and_an_assets_json(creative, base_model):
    game = game_campaign(creative, base_model)
    assets = published(game, 3, channels=("instagram",))
    by_row = {}
    for asset in assets:
        by_row.setdefault(asset.item.row_index, []).append(asset)
    export = _built(export_create(user=creative, campaign=game, layout="game-engine"))
    got = Zip(export)

    first = assets[0]
    assert first.fields["asset_type"] == "weapon icon"
    stem = asset_download_name(first).rsplit(".", 1)[0]
    assert stem.startswith("W-001-")
    folder = f"weapon-icon/{stem}"
    assert f"{folder}/instagram.jpg" in got.names
    index = got.json("assets.json")
    assert set(index) == {str(a.pk) for a in assets}
    entry = index[str(first.pk)]
    assert entry["asset_type"] == "weapon-icon"
    assert entry["files"] == [
        {
            "channel": "instagram",
            "path": f"{folder}/instagram.jpg",
            "width": 96,
            "height": 96,
            "format": "jpeg",
        }
    ]
    siblings = {str(a.pk) for a in by_row[first.item.row_index]} - {str(first.pk)}
    assert set(entry["variations"]) == siblings
    assert got.manifest["layout"] == "game-engine"


def test_the_game_folder_falls_back_to_the_purpose_without_a_type_column(campaign, creative, three):
    Asset.objects.filter(pk=three[0].pk).update(fields={"sku": "X-1", "name": "Plain"})
    got = Zip(_built(export_create(user=creative, campaign=campaign, layout="game-engine")))
    purpose = three[0].item.purpose
    assert any(name.startswith(f"{purpose}/X-1-plain-v") for name in got.names)
    # products.csv has a category column: the others are under it.
    assert any(name.startswith("footwear/") for name in got.names)


def test_assets_with_expired_rights_are_left_out_and_listed_unless_asked_for(
    campaign, creative, three
):
    Asset.objects.filter(pk=three[1].pk).update(rights_until=date(2020, 1, 31))
    export = _built(export_create(user=creative, campaign=campaign))
    got = Zip(export)
    assert str(three[1].pk) not in {r["asset_id"] for r in got.rows}
    left = got.manifest["left_out"]
    assert left == [
        {
            "asset": str(three[1].pk),
            "item": str(three[1].item_id),
            "title": three[1].title,
            "reason": "rights expired 2020-01-31",
        }
    ]
    assert export.left_out == left

    included = Zip(_built(export_create(user=creative, campaign=campaign, include_expired=True)))
    rows = [r for r in included.rows if r["asset_id"] == str(three[1].pk)]
    assert len(rows) == 2 and rows[0]["rights_expired"] == "yes"
    assert rows[0]["rights_until"] == "2020-01-31"
    assert included.manifest["left_out"] == []


def test_assets_without_renditions_are_left_out_as_not_delivered_yet(campaign, creative, three):
    three[2].renditions.all().delete()
    got = Zip(_built(export_create(user=creative, campaign=campaign)))
    assert [e["reason"] for e in got.manifest["left_out"]] == ["not delivered yet"]
    assert len(got.files()) == 4


def test_withdrawn_assets_are_never_exported(campaign, creative, admin_user, three):
    asset_withdraw(asset=three[0], user=admin_user, note="off brand")
    got = Zip(_built(export_create(user=creative, campaign=campaign)))
    assert str(three[0].pk) not in {r["asset_id"] for r in got.rows}
    assert got.manifest["assets"] == 2


def test_a_search_export_takes_every_result_not_one_page(campaign, creative, three, monkeypatch):
    monkeypatch.setattr(exports_module, "EXPORT_CHUNK", 2)
    entries_sync(item_ids=[a.item_id for a in three])
    export = export_create(
        user=creative, search={"q": "sneaker OR boot OR sandal", "page": "7", "sort": "cost"}
    )
    assert export.search == {"q": "sneaker OR boot OR sandal"}
    wanted = {str(a.pk) for a in three if a.fields["product_type"] in ("sneaker", "boot", "sandal")}
    got = Zip(_built(export))
    assert {r["asset_id"] for r in got.rows} == wanted
    assert got.manifest["selection"] == {"search": {"q": "sneaker OR boot OR sandal"}}


def test_a_search_export_with_filters_keeps_only_the_matching_assets(campaign, creative, three):
    entries_sync(item_ids=[a.item_id for a in three])
    export = export_create(user=creative, search={"campaign": str(campaign.pk), "rights": ""})
    assert export.total == 3
    assert export.search == {"campaign": str(campaign.pk)}


def test_a_bad_filter_is_refused_naming_the_field(campaign, creative, three):
    with pytest.raises(InputError) as caught:
        export_create(user=creative, search={"min_score": "lots"})
    assert caught.value.fields == {"search.min_score"}
    with pytest.raises(InputError) as caught:
        export_create(user=creative, search={"colour": "red"})
    assert caught.value.fields == {"search.colour"}
    assert Export.objects.count() == 0


def test_an_empty_selection_is_refused_and_nothing_is_written(campaign, creative):
    with pytest.raises(InputError) as caught:
        export_create(user=creative, campaign=campaign)
    assert caught.value.fields == {"selection"}
    assert "nothing to export" in str(caught.value)
    with pytest.raises(InputError):
        export_create(user=creative, search={"q": "helicopter"})
    assert Export.objects.count() == 0


def test_exactly_one_of_campaign_and_search_and_a_known_layout(campaign, creative, three):
    with pytest.raises(InputError) as caught:
        export_create(user=creative, campaign=campaign, search={"q": "x"})
    assert caught.value.fields == {"selection"}
    with pytest.raises(InputError) as caught:
        export_create(user=creative)
    assert caught.value.fields == {"selection"}
    with pytest.raises(InputError) as caught:
        export_create(user=creative, campaign=campaign, layout="unity")
    assert caught.value.fields == {"layout"}


def test_creating_an_export_enqueues_its_job_after_the_commit(
    campaign, creative, three, handoffs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        export = export_create(user=creative, campaign=campaign)
    assert handoffs == [("catalogue.jobs.build_export", [str(export.pk)])]


def test_progress_is_written_after_every_chunk(campaign, creative, monkeypatch):
    published(campaign, 5, channels=("instagram",))
    monkeypatch.setattr(exports_module, "EXPORT_CHUNK", 2)
    seen = []
    original = exports_module._Build.progress

    def progress(self, done, total):
        original(self, done, total)
        seen.append(Export.objects.values_list("done", "total", "status").get(pk=self.export.pk))

    monkeypatch.setattr(exports_module._Build, "progress", progress)
    export = _built(export_create(user=creative, campaign=campaign))
    assert seen == [(2, 5, "building"), (4, 5, "building"), (5, 5, "building")]
    assert export.status == Export.Status.READY


def test_a_second_run_of_the_job_does_nothing(campaign, creative, three):
    export = _built(export_create(user=creative, campaign=campaign))
    finished = export.finished_at
    assert export_build(export_id=export.pk) is None
    export.refresh_from_db()
    assert export.finished_at == finished and export.attempts == 1


def test_a_building_export_whose_lease_ran_out_is_built_again_from_the_start(
    campaign, creative, three
):
    export = export_create(user=creative, campaign=campaign)
    past = timezone.now() - timedelta(minutes=1)
    Export.objects.filter(pk=export.pk).update(
        status="building", lease_until=past, started_at=past, done=1, attempts=1
    )
    # A leftover zip of the attempt that died is replaced, not kept beside it.
    default_storage.save(f"exports/{export.pk}.zip", ContentFile(b"partial"))
    export = _built(export)
    assert export.status == Export.Status.READY and export.attempts == 2
    assert export.file.name == f"exports/{export.pk}.zip"
    assert len(Zip(export).files()) == 6


def test_a_building_export_with_a_live_lease_is_left_to_its_run(campaign, creative, three):
    export = export_create(user=creative, campaign=campaign)
    soon = timezone.now() + timedelta(minutes=5)
    Export.objects.filter(pk=export.pk).update(status="building", lease_until=soon)
    assert export_build(export_id=export.pk) is None
    assert Export.objects.get(pk=export.pk).status == "building"


def test_a_failed_attempt_goes_back_to_the_queue_then_fails_with_the_reason(
    campaign, creative, three, settings, monkeypatch
):
    settings.STUDIO_MAX_ATTEMPTS = 2
    export = export_create(user=creative, campaign=campaign)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exports_module, "_copy_file", broken)
    monkeypatch.setattr(exports_module._Build, "manifests", broken)
    with pytest.raises(OSError):
        export_build(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == "queued" and export.error == "disk full"
    with pytest.raises(OSError):
        export_build(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == "failed" and export.error == "disk full" and export.attempts == 2


def test_the_reconciler_requeues_stuck_exports_and_fails_them_after_the_last_attempt(
    campaign, creative, three, handoffs, settings, django_capture_on_commit_callbacks
):
    settings.STUDIO_MAX_ATTEMPTS = 3
    stale = export_create(user=creative, campaign=campaign)
    lost = export_create(user=creative, campaign=campaign)
    dead = export_create(user=creative, campaign=campaign)
    fresh = export_create(user=creative, campaign=campaign)
    long_ago = timezone.now() - timedelta(hours=1)
    Export.objects.filter(pk=stale.pk).update(status="building", lease_until=long_ago, attempts=1)
    Export.objects.filter(pk=lost.pk).update(created_at=long_ago)
    Export.objects.filter(pk=dead.pk).update(status="building", lease_until=long_ago, attempts=3)
    Export.objects.filter(pk=fresh.pk).update(
        status="building", lease_until=timezone.now() + timedelta(minutes=5)
    )
    handoffs.clear()
    with django_capture_on_commit_callbacks(execute=True):
        counts = exports_reconcile()
    assert counts["exports_requeued"] == 2 and counts["exports_failed"] == 1
    assert sorted(ids[0] for _, ids in handoffs) == sorted([str(stale.pk), str(lost.pk)])
    dead.refresh_from_db()
    assert dead.status == "failed" and "3 attempts" in dead.error
    # The requeued one is then built: the stage's job claims it although it says building.
    assert _built(stale).status == Export.Status.READY


def test_the_reconciler_expires_old_exports_and_deletes_their_file(campaign, creative, three):
    export = _built(export_create(user=creative, campaign=campaign))
    name = export.file.name
    assert default_storage.exists(name)
    assert exports_reconcile()["exports_expired"] == 0
    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert exports_reconcile()["exports_expired"] == 1
    export.refresh_from_db()
    assert export.status == "expired" and not export.file.name
    assert not default_storage.exists(name)


def test_a_ready_export_emits_export_ready_with_its_counts_and_download_path(
    campaign, creative, three, handoffs
):
    WebhookSubscription.objects.create(
        user=creative, url="https://hooks.example.com/x", events=["export.ready"], secret="s"
    )
    Asset.objects.filter(pk=three[0].pk).update(rights_until=date(2020, 1, 1))
    export = _built(export_create(user=creative, campaign=campaign))
    (event,) = WebhookEvent.objects.filter(type="export.ready")
    data = event.payload["data"]["export"]
    assert data["id"] == str(export.pk)
    assert data["files"] == 4 and data["assets"] == 3 and data["left_out"] == 1
    assert data["download_url"] == f"/api/v1/exports/{export.pk}/download"
    assert data["bytes"] == export.bytes


def test_the_reconciler_leaves_a_queued_export_whose_job_still_waits_in_redis(
    campaign, creative, three, redis_queues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        export = export_create(user=creative, campaign=campaign)
    assert redis_queues["delivery"].fetch_job(f"export-{export.pk}") is not None
    Export.objects.filter(pk=export.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert exports_reconcile()["exports_requeued"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_burst_worker_on_the_delivery_queue_builds_a_queued_export(
    campaign, creative, redis_queues
):
    from django.core.management import call_command

    published(campaign, 2)
    export = export_create(user=creative, campaign=campaign)  # committed: enqueued at once
    call_command("rqworker", "delivery", burst=True)
    export.refresh_from_db()
    assert export.status == Export.Status.READY
    # Committed, the approvals' own delivery jobs ran too: the zip has the renditions made.
    renditions = Rendition.objects.filter(asset__campaign=campaign).count()
    assert renditions >= 2 and len(Zip(export).files()) == renditions


def test_the_studio_reconciler_runs_the_exports_part(campaign, creative, three, handoffs):
    from studio.reconcile import reconcile

    export = _built(export_create(user=creative, campaign=campaign))
    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    counts = reconcile()
    assert counts["exports_expired"] == 1 and counts["exports_requeued"] == 0


def test_the_manifests_carry_each_images_matrix_cell_and_catalogue_tags(campaign, creative, three):
    from generation.models import Item

    asset = three[0]
    Item.objects.filter(pk=asset.item_id).update(axes={"seed": 2, "lora": {"style-a": 0.8}})
    entries_sync(item_ids=[asset.item_id])

    got = Zip(_built(export_create(user=creative, campaign=campaign)))

    row = next(r for r in got.manifest["rows"] if r["asset_id"] == str(asset.pk))
    assert row["axes"] == {"seed": 2, "lora": {"style-a": 0.8}}
    csv_row = next(r for r in got.rows if r["asset_id"] == str(asset.pk))
    assert '"style-a": 0.8' in csv_row["axes"]
    tags = Entry.objects.get(pk=asset.item_id).tag_names
    assert tags and csv_row["tags"] == ", ".join(tags)
