"""Launching a campaign: the generation plan and its quality policy, as one action.

This is wiring, above the apps: a campaign is generation's, its quality policy is review's,
and the page, the command line and the API all launch through this one function.
"""

from __future__ import annotations

from django.db import transaction

from generation.models import Campaign
from generation.services import campaign_submit
from review.services import quality_policy_create, quality_thresholds_check


def campaign_launch(
    *, approve_at: float | None = None, reject_below: float | None = None, **submit
) -> Campaign:
    """Validate the thresholds and the whole campaign, then create the campaign, its items and
    its quality policy in one transaction; the generation jobs are enqueued at commit.

    ``submit`` takes campaign_submit's arguments. Raises InputError naming the field; on any
    error nothing is written.
    """
    quality_thresholds_check(approve_at=approve_at, reject_below=reject_below)
    with transaction.atomic():
        campaign = campaign_submit(**submit)
        quality_policy_create(campaign=campaign, approve_at=approve_at, reject_below=reject_below)
    return campaign
