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
