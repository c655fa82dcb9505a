from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from catalogue.models import CampaignValue
from generation.models import Campaign


@transaction.atomic
def campaign_value_set(
    *, campaign: Campaign, value_per_image: Decimal, note: str = "", user=None
) -> CampaignValue:
    """Set what an approved image of the campaign is worth, for its ROI."""
    value, _ = CampaignValue.objects.update_or_create(
        campaign=campaign,
        defaults={"value_per_image": value_per_image, "note": note, "set_by": user},
    )
    return value
