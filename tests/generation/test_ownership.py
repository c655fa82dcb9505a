"""Campaign status moves only along Campaign.TRANSITIONS; item status only along
Item.VERDICT_TRANSITIONS; a regenerated item inherits the inputs, never the run's facts."""

from __future__ import annotations

import pytest

from generation.batching import batch_key
from generation.models import Campaign, Item
from generation.services import (
    campaign_complete_if_done,
    campaign_transition,
    item_regenerate,
    item_status_change,
)
from studio.errors import InputError


def test_an_illegal_transition_is_refused_naming_the_status(campaign):
    campaign_transition(campaign=campaign, action="cancel")

    with pytest.raises(InputError) as error:
        campaign_transition(campaign=campaign, action="resume")

    assert error.value.messages() == ["campaign: cannot resume a campaign that is cancelled"]
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELLED


def test_a_completed_campaign_reopens_when_an_item_goes_back_to_review(campaign):
    items = list(campaign.items.all())
    Item.objects.filter(pk__in=[i.pk for i in items]).update(status=Item.Status.REVIEW)
    for item in items:
        assert item_status_change(
            item_id=item.pk, from_status=Item.Status.REVIEW, to_status=Item.Status.APPROVED
        )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED and campaign.finished_at

    item_status_change(
        item_id=items[0].pk, from_status=Item.Status.APPROVED, to_status=Item.Status.REVIEW
    )

    campaign.refresh_from_db()
    assert (campaign.status, campaign.finished_at) == (Campaign.Status.RUNNING, None)
    assert not campaign_complete_if_done(campaign_id=campaign.pk)


def test_an_item_change_is_conditional_and_limited_to_the_verdict_transitions(campaign):
    item = campaign.items.first()
    assert not item_status_change(
        item_id=item.pk, from_status=Item.Status.SCORING, to_status=Item.Status.APPROVED
    )  # it is queued, not scoring: nothing changes
    assert Item.objects.get(pk=item.pk).status == Item.Status.QUEUED
    with pytest.raises(InputError):
        item_status_change(
            item_id=item.pk, from_status=Item.Status.QUEUED, to_status=Item.Status.APPROVED
        )


def test_a_regenerated_item_keeps_the_pinned_inputs_but_not_the_old_runs_facts(campaign):
    old = campaign.items.first()
    Item.objects.filter(pk=old.pk).update(
        status=Item.Status.REJECTED,
        run={"batch_size": 4, "batch_invariant": True, "provider": {"x": 1}},
    )
    old.refresh_from_db()
    fresh = campaign.items.exclude(pk=old.pk).filter(params=old.params).first()

    new = item_regenerate(item=old)

    assert new.params == old.params and new.run == {}
    assert batch_key(new) == batch_key(fresh)  # batched with never-run items again
    assert "batch_invariant" not in new.params
