"""The delivery settings page of a campaign, renditions on the asset page, and the rendition
download with its permission check."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from catalogue.delivery.renditions import delivery_for, renditions_make
from catalogue.models import Delivery
from catalogue.services import asset_download_name, asset_withdraw
from tests.conftest import logged_in


def _url(campaign) -> str:
    return reverse("catalogue:delivery", args=[campaign.pk])


def _form(**values) -> dict:
    data = {
        "channels": ["instagram", "web-thumbnail"],
        "custom_sizes": "",
        "quality": "85",
        "max_upscale": "2",
        "watermark": "none",
        "watermark_text": "",
        "watermark_position": "bottom-right",
        "watermark_margin": "0.03",
        "watermark_opacity": "0.5",
        "watermark_scale": "0.2",
        "watermark_channels": "",
    }
    return data | values


def test_the_page_shows_the_settings_form(campaign, creative_client):
    response = creative_client.get(_url(campaign))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'type="checkbox" name="channels" value="instagram"' in page
    assert 'name="watermark_logo"' in page and 'enctype="multipart/form-data"' in page
    assert 'name="format_web-thumbnail"' in page


def test_managers_and_admins_may_use_it_and_reviewers_may_not(
    campaign, client, manager, admin_user, reviewer
):
    assert logged_in(client, manager).get(_url(campaign)).status_code == 200
    assert logged_in(client, admin_user).get(_url(campaign)).status_code == 200
    logged_in(client, reviewer)
    assert client.get(_url(campaign)).status_code == 403
    assert client.post(_url(campaign), _form()).status_code == 403
    assert not Delivery.objects.filter(campaign=campaign).exists()


def test_a_visitor_is_sent_to_log_in_and_a_user_without_a_role_refused(campaign, client, outsider):
    assert client.get(_url(campaign)).status_code == 302
    logged_in(client, outsider)
    assert client.get(_url(campaign)).status_code == 403


def test_saving_stores_the_settings_and_hands_the_approved_items_on(
    asset, creative_client, handoffs, django_capture_on_commit_callbacks
):
    campaign = asset.campaign
    with django_capture_on_commit_callbacks(execute=True):
        response = creative_client.post(
            _url(campaign),
            _form(
                custom_sizes="1600x900, 300X300",
                custom_format="webp",
                **{"format_instagram": "png"},
                watermark="text",
                watermark_text="© Acme",
                watermark_channels="instagram",
                refuse_upscaled="on",
            ),
        )
    assert response.status_code == 302 and response.url == _url(campaign)
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.channels == ["instagram", "web-thumbnail", "1600x900", "300x300"]
    assert delivery.formats == {"instagram": "png", "1600x900": "webp", "300x300": "webp"}
    assert (delivery.quality, delivery.refuse_upscaled, delivery.watermark_text) == (
        85,
        True,
        "© Acme",
    )
    assert delivery.watermark_channels == ["instagram"] and delivery.version == 2
    assert ("catalogue.jobs.sync_assets", [str(asset.item_id)]) in handoffs
    page = creative_client.get(_url(campaign)).content.decode()
    assert "1600x900, 300x300" in page and "© Acme" in page


def test_a_logo_is_uploaded_with_the_form(campaign, creative_client):
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 20), "red").save(buffer, format="PNG")
    logo = SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")
    response = creative_client.post(_url(campaign), _form(watermark="logo", watermark_logo=logo))
    assert response.status_code == 302
    assert delivery_for(campaign).watermark_logo.name.endswith(".png")


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"custom_sizes": "1600x900, big"}, "custom_sizes", "not a known channel"),
        ({"custom_sizes": "9x9"}, "custom_sizes", "outside 16-8192"),
        ({"quality": "0"}, "quality", "greater than or equal to 1"),
        ({"watermark_opacity": "2"}, "watermark_opacity", "less than or equal to 1"),
        ({"watermark": "text"}, "watermark_text", "write the text"),
        ({"watermark": "logo"}, "watermark_logo", "upload a logo"),
        ({"watermark_channels": "fax"}, "watermark_channels", "known: instagram"),
        ({"channels": ["myspace"]}, "channels", "myspace"),
    ],
)
def test_bad_input_is_a_400_on_its_field_and_nothing_is_saved(
    campaign, creative_client, values, field, message
):
    response = creative_client.post(_url(campaign), _form(**values))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert message in response.content.decode()
    assert not Delivery.objects.filter(campaign=campaign).exists()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG is not accepted"),
        ("logo.png", b"GIF89a not really", "not a PNG, JPEG or WEBP"),
    ],
)
def test_a_bad_logo_is_a_400_on_the_logo_field(campaign, creative_client, name, data, message):
    logo = SimpleUploadedFile(name, data, content_type="image/png")
    response = creative_client.post(_url(campaign), _form(watermark="logo", watermark_logo=logo))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["watermark_logo"])
    assert not Delivery.objects.filter(campaign=campaign).exists()


def test_the_campaign_page_links_to_the_delivery_settings(campaign, creative_client, client):
    page = creative_client.get(reverse("generation:campaign", args=[campaign.pk]))
    assert _url(campaign) in page.content.decode()


# --- Renditions on the asset page and their download ------------------------------------------


@pytest.fixture
def delivered(asset):
    delivery = delivery_for(asset.campaign)
    delivery.channels = ["web-thumbnail"]
    delivery.save()
    renditions_make(asset_id=asset.pk)
    return asset


def test_the_asset_page_lists_the_renditions(delivered, manager_client):
    page = manager_client.get(reverse("catalogue:asset", args=[delivered.pk])).content.decode()
    rendition = delivered.renditions.get()
    assert "<td>web-thumbnail</td>" in page and "400×400" in page and "WEBP" in page
    assert "upscaled ×6.3" in page
    assert reverse("catalogue:rendition_download", args=[rendition.pk]) in page


def test_the_asset_page_lists_refused_channels_with_why(asset, manager_client):
    delivery = delivery_for(asset.campaign)
    delivery.channels, delivery.refuse_upscaled = ["instagram"], True
    delivery.save()
    renditions_make(asset_id=asset.pk)
    page = manager_client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()
    assert "<strong>instagram</strong>: needs ×16.9 upscaling" in page


def test_the_asset_page_shows_a_delivery_error(asset, manager_client):
    asset.delivery = {"error": "the master image items/x.png is missing from storage"}
    asset.save(update_fields=["delivery"])
    page = manager_client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()
    assert "Delivery failed (it is retried): the master image items/x.png is missing" in page


def test_a_rendition_downloads_under_the_assets_name_with_its_channel(delivered, reviewer_client):
    rendition = delivered.renditions.get()
    response = reviewer_client.get(reverse("catalogue:rendition_download", args=[rendition.pk]))
    assert response.status_code == 200
    expected = asset_download_name(delivered).removesuffix(".png") + "-web-thumbnail.webp"
    assert expected.endswith("-v1-web-thumbnail.webp")
    assert f'filename="{expected}"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert Image.open(io.BytesIO(body)).size == (400, 400)


def test_a_withdrawn_assets_renditions_are_for_admins_only(delivered, client, manager, admin_user):
    asset_withdraw(asset=delivered, user=admin_user)
    rendition = delivered.renditions.get()
    download = reverse("catalogue:rendition_download", args=[rendition.pk])
    media = reverse("catalogue:media", args=[rendition.file.name])
    logged_in(client, manager)
    assert client.get(download).status_code == 403
    assert client.get(media).status_code == 403
    logged_in(client, admin_user)
    assert client.get(download).status_code == 200
    assert client.get(media).status_code == 200


def test_a_published_assets_rendition_is_served_by_the_media_view(delivered, manager_client):
    rendition = delivered.renditions.get()
    response = manager_client.get(reverse("catalogue:media", args=[rendition.file.name]))
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"


def test_an_unknown_rendition_is_a_404(manager_client, db):
    url = reverse("catalogue:rendition_download", args=["00000000-0000-0000-0000-000000000000"])
    assert manager_client.get(url).status_code == 404
