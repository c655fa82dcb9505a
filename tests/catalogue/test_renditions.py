"""Renditions per channel: exact sizes, subject-aware crops, upscale limits, fingerprints,
removal, and the delivery job's handling of a missing master."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from catalogue.delivery import renditions as renditions_module
from catalogue.delivery.renditions import (
    delivery_channels,
    delivery_for,
    delivery_update,
    rendition_plan,
    renditions_make,
    renditions_remove,
)
from catalogue.jobs import DeliveryFailed, sync_assets
from catalogue.models import Asset, Delivery, Rendition
from catalogue.services import asset_publish, asset_withdraw, assets_rights_set
from generation.models import Item
from generation.sizes import CHANNELS
from review.models import QualityResult
from studio.errors import InputError
from tests.conftest import route_items, textured_png


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _use_master(asset: Asset, data: bytes) -> Asset:
    """Give the asset (and its item) another master image."""
    name = default_storage.save(
        f"items/{asset.campaign_id}/{asset.item_id}-m.png", ContentFile(data)
    )
    size = Image.open(io.BytesIO(data)).size
    Asset.objects.filter(pk=asset.pk).update(image=name, width=size[0], height=size[1])
    Item.objects.filter(pk=asset.item_id).update(image=name)
    asset.refresh_from_db()
    return asset


def _configure(campaign, **values) -> Delivery:
    """Delivery settings written directly (the service's validation is tested below)."""
    delivery = delivery_for(campaign)
    for name, value in values.items():
        setattr(delivery, name, value)
    delivery.save()
    return delivery


def _open(rendition: Rendition) -> Image.Image:
    with default_storage.open(rendition.file.name, "rb") as handle:
        image = Image.open(handle)
        image.load()
    return image


def _sha(name: str) -> str:
    with default_storage.open(name, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


# --- The crop ---------------------------------------------------------------------------------


def test_the_plan_keeps_a_subject_that_fits_whole_and_centred():
    plan = rendition_plan((256, 256), [160, 100, 40, 40], (1080, 1920))
    x, y, w, h = plan.crop
    assert (w, h) == (144, 256)
    assert x <= 160 and 200 <= x + w
    assert x + w / 2 == 180  # centred on the subject
    assert plan.upscale == pytest.approx(1920 / 256)


def test_the_plan_keeps_a_subject_near_the_edge_whole_as_far_as_the_master_allows():
    x, y, w, h = rendition_plan((256, 256), [230, 10, 20, 20], (1080, 1920)).crop
    assert (x, w) == (112, 144)  # pushed back inside the master
    assert x <= 230 and 250 <= x + w


def test_the_plan_centres_on_a_subject_larger_than_the_crop():
    x, y, w, h = rendition_plan((256, 256), [20, 0, 200, 256], (1080, 1920)).crop
    assert x + w / 2 == 120


@pytest.mark.parametrize("subject", [[], None, [0, 0, 0, 0], [300, 300, 10, 10]])
def test_the_plan_falls_back_to_the_centre_without_a_usable_subject(subject):
    assert rendition_plan((256, 128), subject, (400, 400)).crop == (64, 0, 128, 128)


def test_the_plan_of_a_wide_target_takes_the_full_width():
    plan = rendition_plan((256, 256), [], (1200, 627))
    assert plan.crop == (0, 61, 256, 134)
    assert plan.upscale == pytest.approx(1200 / 256)


# --- Making renditions ------------------------------------------------------------------------


@pytest.mark.parametrize("side", [64, 256])
def test_every_standard_channel_and_a_custom_size_get_their_exact_size(asset, side):
    _use_master(asset, textured_png(3, size=side))
    _configure(asset.campaign, channels=[*CHANNELS, "300x200"])
    outcome = renditions_make(asset_id=asset.pk)
    assert sorted(outcome["made"]) == sorted([*CHANNELS, "300x200"])
    made = {r.channel: r for r in asset.renditions.all()}
    for channel, size in [*CHANNELS.items(), ("300x200", (300, 200))]:
        rendition = made[channel]
        image = _open(rendition)
        assert image.size == size == (rendition.width, rendition.height)
        assert image.format.lower() == rendition.format
        assert rendition.file.name.startswith(f"renditions/{asset.campaign_id}/{asset.pk}/")
        assert rendition.sha256 == _sha(rendition.file.name)
    assert made["instagram"].format == "jpeg"
    assert made["web-thumbnail"].format == "webp"
    assert made["300x200"].format == "png"


def test_a_format_set_for_a_channel_replaces_its_default(asset):
    _configure(asset.campaign, channels=["instagram"], formats={"instagram": "png"})
    renditions_make(asset_id=asset.pk)
    rendition = asset.renditions.get()
    assert rendition.format == "png" and rendition.file.name.endswith("instagram.png")
    assert _open(rendition).format == "PNG"


def test_the_rendition_keeps_the_subject_whole(asset):
    pixels = np.full((256, 256, 3), 235, dtype=np.uint8)
    pixels[100:140, 150:190] = (220, 20, 20)  # a red square right of centre
    _use_master(asset, _png(Image.fromarray(pixels)))
    QualityResult.objects.filter(item=asset.item).update(subject_box=[150, 100, 40, 40])
    _configure(asset.campaign, channels=["1440x2560"], formats={"1440x2560": "png"})
    renditions_make(asset_id=asset.pk)
    rendition = asset.renditions.get()
    out = np.asarray(_open(rendition).convert("RGB")).astype(int)
    red = (out[..., 0] > 150) & (out[..., 1] < 90)
    ys, xs = np.nonzero(red)
    scale = 2560 / 256
    # The whole square is there (its area at the rendition's scale), away from the edges,
    # and in the middle of the frame across.
    assert red.sum() == pytest.approx(40 * 40 * scale * scale, rel=0.05)
    assert xs.min() > 0 and xs.max() < 1439
    assert abs((xs.min() + xs.max()) / 2 - 720) <= scale
    assert rendition.crop == [98, 0, 144, 256]


def test_without_a_subject_the_crop_is_the_centre(asset):
    _use_master(asset, textured_png(1, size=256))
    QualityResult.objects.filter(item=asset.item).update(subject_box=[])
    _configure(asset.campaign, channels=["linkedin"])
    renditions_make(asset_id=asset.pk)
    assert asset.renditions.get().crop == [0, 61, 256, 134]


def test_an_enlargement_over_the_limit_is_marked_upscaled(asset):
    _configure(asset.campaign, channels=["web-thumbnail", "64x64"], max_upscale=2.0)
    renditions_make(asset_id=asset.pk)
    made = {r.channel: r for r in asset.renditions.all()}
    assert made["web-thumbnail"].upscaled and made["web-thumbnail"].upscale == 6.25
    assert not made["64x64"].upscaled and made["64x64"].upscale == 1.0


def test_a_campaign_that_refuses_upscaling_gets_no_rendition_for_that_channel(asset):
    _configure(asset.campaign, channels=["web-thumbnail", "64x64"], refuse_upscaled=True)
    outcome = renditions_make(asset_id=asset.pk)
    assert [r.channel for r in asset.renditions.all()] == ["64x64"]
    asset.refresh_from_db()
    why = asset.delivery["refused"]["web-thumbnail"]
    assert "×6.2" in why and "×2" in why
    assert outcome["refused"] == {"web-thumbnail": why}


def test_a_master_large_enough_is_not_marked(asset):
    _use_master(asset, textured_png(2, size=256))
    _configure(asset.campaign, channels=["web-thumbnail"])
    renditions_make(asset_id=asset.pk)
    rendition = asset.renditions.get()
    assert not rendition.upscaled and rendition.upscale == pytest.approx(400 / 256, abs=1e-3)


def _pixels(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return Image.open(handle).convert("RGB").tobytes()


def test_the_master_is_never_changed(asset):
    generated = asset.image.name
    before = _sha(generated)
    _configure(asset.campaign, channels=[*CHANNELS], watermark="text", watermark_text="ACME")
    renditions_make(asset_id=asset.pk)
    # The generated file is untouched; the asset's download becomes the delivered master:
    # the same pixels, with the provenance embedded (and never the watermark).
    assert _sha(generated) == before
    delivered = Asset.objects.get(pk=asset.pk).image.name
    assert delivered.startswith("masters/") and delivered != generated
    assert _pixels(delivered) == _pixels(generated)
    with default_storage.open(delivered, "rb") as handle:
        assert "parameters" in Image.open(handle).info


def test_the_delivered_master_is_made_again_only_when_its_provenance_changes(asset, creative):
    renditions_make(asset_id=asset.pk)
    first = Asset.objects.get(pk=asset.pk)
    made = default_storage.get_modified_time(first.image.name)
    assert "master" not in renditions_make(asset_id=asset.pk)
    assert default_storage.get_modified_time(first.image.name) == made
    assets_rights_set(assets=[first], user=creative, licence="unrestricted")
    assert renditions_make(asset_id=asset.pk)["master"] == first.image.name


def test_the_channels_come_from_the_delivery_the_item_the_campaign_or_the_default(asset):
    delivery, item = delivery_for(asset.campaign), asset.item
    assert not delivery.channels
    assert delivery_channels(delivery, item) == ["web-thumbnail"]
    item.campaign.channels = ["instagram", "tiktok"]
    assert delivery_channels(delivery, item) == ["instagram", "tiktok"]
    # An item generated for one channel gets that channel, not every shape of the campaign.
    item.channel = "tiktok"
    assert delivery_channels(delivery, item) == ["tiktok"]
    delivery.channels = ["400x300", "linkedin"]
    assert delivery_channels(delivery, item) == ["400x300", "linkedin"]


# --- Idempotency and regeneration -------------------------------------------------------------


def test_a_second_run_with_nothing_changed_writes_nothing(asset, monkeypatch):
    _configure(asset.campaign, channels=["instagram", "web-thumbnail"], max_upscale=20)
    first = renditions_make(asset_id=asset.pk)
    assert sorted(first["made"]) == ["instagram", "web-thumbnail"]
    rows = {r.pk: (r.file.name, r.sha256) for r in Rendition.objects.filter(asset=asset)}

    def refuse(*args, **kwargs):
        raise AssertionError("a file was written")

    monkeypatch.setattr(renditions_module.default_storage, "save", refuse)
    with CaptureQueriesContext(connection) as queries:
        second = renditions_make(asset_id=asset.pk)
    assert second["made"] == [] and sorted(second["kept"]) == ["instagram", "web-thumbnail"]
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert {r.pk: (r.file.name, r.sha256) for r in Rendition.objects.filter(asset=asset)} == rows


def test_a_refused_channel_found_again_writes_nothing(asset):
    _configure(asset.campaign, channels=["web-thumbnail"], refuse_upscaled=True)
    renditions_make(asset_id=asset.pk)
    with CaptureQueriesContext(connection) as queries:
        renditions_make(asset_id=asset.pk)
    assert not [q for q in queries if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))]


def test_a_delivery_change_makes_the_renditions_again(asset, creative):
    delivery_update(campaign=asset.campaign, user=creative, channels=["instagram"], quality=90)
    renditions_make(asset_id=asset.pk)
    before = asset.renditions.get()
    delivery_update(campaign=asset.campaign, user=creative, quality=40)
    outcome = renditions_make(asset_id=asset.pk)
    after = asset.renditions.get()
    assert outcome["made"] == ["instagram"]
    assert after.pk == before.pk and after.fingerprint != before.fingerprint
    assert after.sha256 != before.sha256 and after.sha256 == _sha(after.file.name)


def test_a_rights_change_makes_the_renditions_again(asset, manager):
    _configure(asset.campaign, channels=["web-thumbnail"])
    renditions_make(asset_id=asset.pk)
    before = asset.renditions.get().fingerprint
    assets_rights_set(assets=[asset], user=manager, licence="unrestricted")
    assert renditions_make(asset_id=asset.pk)["made"] == ["web-thumbnail"]
    assert asset.renditions.get().fingerprint != before


def test_a_rights_change_hands_the_item_to_the_delivery_stage(
    asset, manager, handoffs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assets_rights_set(assets=[asset], user=manager, licence="unrestricted")
    assert ("catalogue.jobs.sync_assets", [str(asset.item_id)]) in handoffs


def test_a_delivery_change_hands_the_approved_items_to_the_delivery_stage(
    asset, creative, handoffs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = delivery_update(campaign=asset.campaign, user=creative, channels=["tiktok"])
    approved = {
        str(pk)
        for pk in Item.objects.filter(
            campaign=asset.campaign, status=Item.Status.APPROVED
        ).values_list("pk", flat=True)
    }
    handed = {i for job, ids in handoffs if job == "catalogue.jobs.sync_assets" for i in ids}
    assert handed == approved and str(asset.item_id) in handed
    assert delivery.version == 2 and delivery.updated_by == creative


def test_a_dropped_channel_loses_its_rendition_and_file(asset, creative):
    delivery_update(campaign=asset.campaign, user=creative, channels=["instagram", "linkedin"])
    renditions_make(asset_id=asset.pk)
    linkedin = asset.renditions.get(channel="linkedin")
    assert default_storage.exists(linkedin.file.name)
    delivery_update(campaign=asset.campaign, user=creative, channels=["instagram"])
    outcome = renditions_make(asset_id=asset.pk)
    assert outcome["removed"] == ["linkedin"]
    assert [r.channel for r in asset.renditions.all()] == ["instagram"]
    assert not default_storage.exists(linkedin.file.name)


def test_removing_an_assets_renditions_deletes_rows_and_files(asset):
    _configure(asset.campaign, channels=["instagram", "web-thumbnail"])
    renditions_make(asset_id=asset.pk)
    names = [r.file.name for r in asset.renditions.all()]
    assert renditions_remove(asset_id=asset.pk) == 2
    assert not asset.renditions.exists()
    assert not any(default_storage.exists(name) for name in names)


def test_a_withdrawn_asset_gets_no_renditions_and_keeps_its_files(asset, admin_user):
    renditions_make(asset_id=asset.pk)
    name = asset.renditions.get().file.name
    asset_withdraw(asset=asset, user=admin_user)
    _configure(asset.campaign, channels=["instagram"])
    assert renditions_make(asset_id=asset.pk)["made"] == []
    assert default_storage.exists(name) and asset.renditions.count() == 1


# --- The delivery job -------------------------------------------------------------------------


def test_a_missing_master_fails_its_item_and_the_others_are_still_delivered(campaign):
    items = route_items(campaign, to="approved", count=2)
    broken, fine = (asset_publish(item_id=item.pk) for item in items)
    default_storage.delete(broken.image.name)
    with pytest.raises(DeliveryFailed, match="missing from storage"):
        sync_assets([str(broken.item_id), str(fine.item_id)])
    broken.refresh_from_db()
    assert "missing from storage" in broken.delivery["error"]
    assert not broken.renditions.exists()
    assert [r.channel for r in fine.renditions.all()] == ["web-thumbnail"]
    # Once the master is back, the retry delivers it and clears the error; the other one is
    # left as it was (its fingerprints match).
    kept = fine.renditions.get().sha256
    default_storage.save(broken.image.name, ContentFile(textured_png(5)))
    assert sync_assets([str(broken.item_id), str(fine.item_id)]) == [
        str(broken.pk),
        str(fine.pk),
    ]
    broken.refresh_from_db()
    assert "error" not in broken.delivery and broken.renditions.count() == 1
    assert fine.renditions.get().sha256 == kept


def test_the_delivery_job_makes_renditions_for_a_newly_published_item(campaign):
    (item,) = route_items(campaign, to="approved", count=1)
    (asset_id,) = sync_assets([str(item.pk)])
    rendition = Rendition.objects.get(asset_id=asset_id)
    assert (rendition.width, rendition.height, rendition.upscaled) == (400, 400, True)


# --- Validating the settings ------------------------------------------------------------------


def _refused(campaign, user, **values) -> InputError:
    with pytest.raises(InputError) as caught:
        delivery_update(campaign=campaign, user=user, **values)
    assert not Delivery.objects.filter(campaign=campaign).exists()
    return caught.value


def test_an_unknown_channel_is_refused_with_the_known_ones(campaign, creative):
    error = _refused(campaign, creative, channels=["instagram", "myspace"])
    assert error.fields == {"channels"}
    assert "'myspace'" in str(error) and "known: instagram, instagram-portrait" in str(error)


def test_reels_is_tiktok(campaign, creative):
    delivery = delivery_update(campaign=campaign, user=creative, channels=["Reels", "1600X900"])
    assert delivery.channels == ["tiktok", "1600x900"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"channels": ["9x9"]}, "channels"),
        ({"channels": ["99999x100"]}, "channels"),
        ({"quality": 0}, "quality"),
        ({"quality": "lots"}, "quality"),
        ({"watermark_opacity": 1.5}, "watermark_opacity"),
        ({"watermark_margin": -0.1}, "watermark_margin"),
        ({"watermark_scale": 0}, "watermark_scale"),
        ({"max_upscale": 0.5}, "max_upscale"),
        ({"formats": {"instagram": "gif"}}, "formats"),
        ({"watermark": "text"}, "watermark_text"),
        ({"watermark": "logo"}, "watermark_logo"),
        ({"watermark_position": "middle"}, "watermark_position"),
        ({"watermark_channels": ["fax"]}, "watermark_channels"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_saved(campaign, creative, values, field):
    assert field in _refused(campaign, creative, **values).fields


def test_avif_is_refused_when_pillow_cannot_write_it(campaign, creative, monkeypatch):
    monkeypatch.setattr(renditions_module.features, "check", lambda name: False)
    error = _refused(campaign, creative, formats={"instagram": "avif"})
    assert error.fields == {"formats"} and "AVIF" in str(error)


def test_avif_is_written_when_pillow_can(asset, creative):
    if not renditions_module.avif_available():
        pytest.skip("this Pillow has no AVIF encoder")
    delivery_update(
        campaign=asset.campaign,
        user=creative,
        channels=["web-thumbnail"],
        formats={"web-thumbnail": "avif"},
    )
    renditions_make(asset_id=asset.pk)
    rendition = asset.renditions.get()
    assert rendition.format == "avif" and _open(rendition).size == (400, 400)
