"""Usage rights are data: licence, channels, territories, dates, notes; validated first,
set on one asset or a selection, every change audited."""

from __future__ import annotations

from datetime import date

import pytest

from catalogue.models import Asset, Entry, RightsChange
from catalogue.services import asset_publish, assets_rights_set
from studio.errors import InputError
from tests.conftest import route_items

RIGHTS = {
    "licence": "custom",
    "custom": "Print and web in the EU, 2027 catalogue only",
    "channels": ["instagram", "Web"],
    "territories": ["gb", "VN", "id"],
    "valid_from": date(2027, 1, 1),
    "valid_until": date(2027, 12, 31),
    "notes": "Model release on file",
}


@pytest.fixture
def assets(campaign):
    items = route_items(campaign, to="approved", count=2)
    return [asset_publish(item_id=item.pk) for item in items]


def test_rights_are_set_on_a_selection_and_every_change_is_audited(assets, manager):
    assert assets_rights_set(assets=assets, user=manager, **RIGHTS) == 2

    for asset in assets:
        asset.refresh_from_db()
        assert asset.rights == "custom" and asset.rights_custom.startswith("Print and web")
        assert asset.rights_channels == ["instagram", "web"]
        assert asset.rights_territories == ["GB", "ID", "VN"]
        assert (asset.rights_from, asset.rights_until) == (date(2027, 1, 1), date(2027, 12, 31))
        assert asset.rights_set_by == manager and asset.rights_set_at
        (change,) = RightsChange.objects.filter(asset=asset)
        assert change.before["rights"] == "internal" and change.after["rights"] == "custom"
        assert change.after["rights_until"] == "2027-12-31"
        assert Entry.objects.get(item_id=asset.item_id).rights_until == date(2027, 12, 31)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"licence": "everything"}, "licence"),
        ({"custom": ""}, "custom"),
        ({"channels": ["fax"]}, "channels"),
        ({"territories": ["XX"]}, "territories"),
        ({"valid_until": date(2026, 1, 1)}, "valid_until"),
    ],
)
def test_a_bad_field_is_named_and_nothing_changes(assets, manager, change, field):
    with pytest.raises(InputError) as error:
        assets_rights_set(assets=assets, user=manager, **(RIGHTS | change))

    assert field in error.value.fields
    assert not RightsChange.objects.exists()
    assert set(Asset.objects.values_list("rights", flat=True)) == {"internal"}


def test_expired_rights_are_known_on_the_asset(assets, manager):
    assets_rights_set(
        assets=assets[:1], user=manager, licence="campaign", valid_until=date(2020, 1, 1)
    )
    assets[0].refresh_from_db()

    assert assets[0].rights_expired()
    assert not assets[1].rights_expired()


def test_a_manager_sets_rights_on_the_asset_page_and_sees_the_history(manager_client, asset):
    from django.urls import reverse

    url = reverse("catalogue:asset_rights", args=[asset.pk])
    response = manager_client.post(
        url,
        {
            "licence": "campaign",
            "channels": "web, instagram",
            "territories": "GB, VN",
            "valid_until": "2020-01-31",
        },
    )

    assert response.status_code == 302
    page = manager_client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()
    assert "rights expired" in page and "GB, VN" in page and "mona" in page


def test_bad_rights_on_the_page_name_the_field_and_change_nothing(manager_client, asset):
    from django.urls import reverse

    response = manager_client.post(
        reverse("catalogue:asset_rights", args=[asset.pk]),
        {"licence": "campaign", "territories": "Narnia"},
    )

    assert response.status_code == 400
    assert "NARNIA: not ISO 3166-1 codes" in response.content.decode()
    asset.refresh_from_db()
    assert asset.rights == "internal" and not RightsChange.objects.exists()


def test_a_reviewer_cannot_change_rights(reviewer_client, asset):
    from django.urls import reverse

    response = reviewer_client.post(
        reverse("catalogue:asset_rights", args=[asset.pk]), {"licence": "unrestricted"}
    )
    assert response.status_code == 403
