"""Originals download under a human name; a withdrawn asset only for admins."""

from __future__ import annotations

from django.urls import reverse

from catalogue.models import Asset
from catalogue.services import asset_download_name
from tests.conftest import logged_in


def test_the_original_downloads_under_its_product_name(manager_client, asset):
    response = manager_client.get(reverse("catalogue:asset_download", args=[asset.pk]))

    assert response.status_code == 200
    name = asset_download_name(asset)
    assert name == f"SH-1001-aero-runner-red-v{asset.item.variation + 1}.png"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    with asset.item.image.open("rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()


def test_a_name_with_any_characters_becomes_a_safe_ascii_file_name(asset):
    asset.fields = {"sku": 'X"1\r\n', "name": "Áo Dài Lụa / \\ 😀 <b>", "color": "đỏ"}

    name = asset_download_name(asset)

    assert name.isascii() and '"' not in name and "/" not in name and "\n" not in name
    assert name.startswith("X1-ao-dai-lua-b-do-v")


def test_a_withdrawn_asset_downloads_only_for_an_admin(client, manager, admin_user, asset):
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.WITHDRAWN)
    url = reverse("catalogue:asset_download", args=[asset.pk])

    assert logged_in(client, manager).get(url).status_code == 403
    page = client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()
    assert url not in page and "only an admin may download it" in page
    assert logged_in(client, admin_user).get(url).status_code == 200
