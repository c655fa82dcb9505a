"""The asset admin changes status only through the catalogue's withdraw / restore services,
which record who withdrew it and why."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from catalogue.models import Asset
from studio.services import user_role_grant


@pytest.fixture
def staff_client(client, admin_user):
    user_role_grant(user=admin_user, role="admin")
    client.force_login(admin_user)
    return client


def _act(client, action, asset):
    return client.post(
        reverse("admin:catalogue_asset_changelist"),
        {"action": action, "_selected_action": [str(asset.pk)]},
        follow=True,
    )


def test_an_admin_withdraws_an_asset_with_a_record_and_restores_it(staff_client, admin_user, asset):
    response = _act(staff_client, "withdraw", asset)

    assert "1 asset(s) withdrawn." in response.content.decode()
    asset.refresh_from_db()
    assert (asset.status, asset.withdrawn_reason, asset.withdrawn_by) == (
        Asset.Status.WITHDRAWN,
        Asset.Withdrawal.ADMIN,
        admin_user,
    )
    assert LogEntry.objects.filter(object_id=str(asset.pk)).count() == 1

    _act(staff_client, "restore", asset)

    asset.refresh_from_db()
    assert (asset.status, asset.withdrawn_reason) == (Asset.Status.PUBLISHED, "")
    assert LogEntry.objects.filter(object_id=str(asset.pk)).count() == 2


def test_the_status_is_not_a_field_an_admin_can_type_into(staff_client, asset):
    page = staff_client.get(reverse("admin:catalogue_asset_change", args=[asset.pk]))

    assert 'name="status"' not in page.content.decode()
    assert 'name="rights"' in page.content.decode()


def test_an_asset_whose_item_is_no_longer_approved_cannot_be_restored(staff_client, asset):
    from generation.models import Item

    _act(staff_client, "withdraw", asset)
    Item.objects.filter(pk=asset.item_id).update(status=Item.Status.REVIEW)

    response = _act(staff_client, "restore", asset)

    assert "no longer approved" in response.content.decode()
    asset.refresh_from_db()
    assert asset.status == Asset.Status.WITHDRAWN
