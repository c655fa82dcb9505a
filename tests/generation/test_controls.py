"""Campaign controls: pause, resume, cancel, retry and priority — services, pages, command."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from generation.models import Campaign, Item
from generation.services import (
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_retry_failed,
    campaign_submit,
    items_generate,
    items_reconcile,
)
from studio.errors import InputError


def ids(campaign) -> list[str]:
    return [str(pk) for pk in campaign.items.values_list("pk", flat=True)]


def test_a_paused_campaigns_items_are_skipped_by_the_job_and_stay_queued(campaign):
    campaign_pause(campaign=campaign)

    assert items_generate(item_ids=ids(campaign)) == 0
    assert campaign.status == Campaign.Status.PAUSED
    assert set(campaign.items.values_list("status", flat=True)) == {Item.Status.QUEUED}


def test_resume_enqueues_the_queued_items_again_under_new_jobs(
    campaign, redis_queues, django_capture_on_commit_callbacks
):
    campaign_pause(campaign=campaign)
    old_jobs = set(campaign.items.values_list("job_id", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        campaign_resume(campaign=campaign)

    assert campaign.status == Campaign.Status.RUNNING
    new_jobs = set(campaign.items.values_list("job_id", flat=True))
    assert len(new_jobs) == 10 and not new_jobs & old_jobs
    assert set(redis_queues["generation"].job_ids) == new_jobs


def test_illegal_transitions_are_refused_with_the_current_status(campaign):
    with pytest.raises(InputError, match="cannot resume a campaign that is running"):
        campaign_resume(campaign=campaign)
    campaign_cancel(campaign=campaign)
    with pytest.raises(InputError, match="cannot pause a campaign that is cancelled"):
        campaign_pause(campaign=campaign)
    with pytest.raises(InputError, match="cannot retry items of a cancelled campaign"):
        campaign_retry_failed(campaign=campaign)


def test_cancel_cancels_queued_items_and_lets_running_ones_finish(campaign):
    running = campaign.items.first()
    Item.objects.filter(pk=running.pk).update(status=Item.Status.RUNNING)

    assert campaign_cancel(campaign=campaign) == 39

    counts = dict(campaign.items.order_by().values_list("status").annotate(n=Count("pk")))
    assert counts == {Item.Status.CANCELLED: 39, Item.Status.RUNNING: 1}
    assert campaign.status == Campaign.Status.CANCELLED


def test_retry_queues_failed_items_again_and_reopens_a_completed_campaign(
    campaign, redis_queues, django_capture_on_commit_callbacks
):
    failed = list(campaign.items.all()[:3])
    Item.objects.filter(pk__in=[i.pk for i in failed]).update(
        status=Item.Status.FAILED, attempts=3, error="HTTP 500"
    )
    Item.objects.exclude(pk__in=[i.pk for i in failed]).update(status=Item.Status.APPROVED)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
    campaign.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_retry_failed(campaign=campaign) == 3

    assert campaign.status == Campaign.Status.RUNNING
    retried = Item.objects.filter(pk__in=[i.pk for i in failed])
    assert {(i.status, i.attempts, i.error) for i in retried} == {(Item.Status.QUEUED, 0, "")}
    assert redis_queues["generation"].count == 1  # three items, one batch


def test_retry_without_failed_items_says_so(campaign):
    with pytest.raises(InputError, match="has no failed items"):
        campaign_retry_failed(campaign=campaign)


def test_a_high_priority_campaigns_jobs_go_ahead_of_queued_bulk_work(
    campaign,
    template_version,
    recipe,
    products_csv,
    redis_queues,
    django_capture_on_commit_callbacks,
):
    redis_queues["generation"].empty()
    with django_capture_on_commit_callbacks(execute=True):
        bulk = campaign_submit(
            name="Bulk",
            template_version=template_version,
            recipe=recipe,
            csv_bytes=products_csv,
            base_seed=1,
        )
    with django_capture_on_commit_callbacks(execute=True):
        urgent = campaign_submit(
            name="Urgent",
            template_version=template_version,
            recipe=recipe,
            csv_bytes=products_csv,
            base_seed=2,
            priority="high",
        )

    queue = redis_queues["generation"].job_ids
    urgent_jobs = set(urgent.items.values_list("job_id", flat=True))
    bulk_jobs = set(bulk.items.values_list("job_id", flat=True))
    assert set(queue[: len(urgent_jobs)]) == urgent_jobs
    assert set(queue[len(urgent_jobs) :]) == bulk_jobs


@pytest.mark.django_db(transaction=True)
def test_the_reconciler_leaves_a_paused_campaigns_queued_items_alone(redis_queues, campaign):
    campaign_pause(campaign=campaign)
    redis_queues["generation"].connection.flushdb()
    Item.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    assert items_reconcile()["requeued"] == 0


# --- pages ---------------------------------------------------------------------------------------


def test_a_creative_pauses_and_resumes_from_the_campaign_page(client, creative, campaign):
    client.force_login(creative)
    page = client.get(reverse("generation:campaign", args=[campaign.pk])).content.decode()
    assert reverse("generation:campaign_action", args=[campaign.pk, "pause"]) in page

    response = client.post(reverse("generation:campaign_action", args=[campaign.pk, "pause"]))

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    page = client.get(response.url).content.decode()
    assert "paused; queued items wait" in page
    assert reverse("generation:campaign_action", args=[campaign.pk, "resume"]) in page


def test_an_illegal_action_from_the_page_shows_the_reason_instead_of_failing(
    client, creative, campaign
):
    client.force_login(creative)

    response = client.post(
        reverse("generation:campaign_action", args=[campaign.pk, "resume"]), follow=True
    )

    assert response.status_code == 200
    assert "cannot resume a campaign that is running" in response.content.decode()


def test_controls_are_post_only_and_for_creatives_and_admins(client, reviewer, creative, campaign):
    url = reverse("generation:campaign_action", args=[campaign.pk, "cancel"])
    client.force_login(creative)
    assert client.get(url).status_code == 405
    assert (
        client.post(
            reverse("generation:campaign_action", args=[campaign.pk, "explode"])
        ).status_code
        == 404
    )
    client.force_login(reviewer)
    assert client.post(url).status_code == 403
    page = client.get(reverse("generation:campaign", args=[campaign.pk])).content.decode()
    assert url not in page
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_the_priority_form_sets_a_campaigns_priority(client, admin_user, campaign):
    client.force_login(admin_user)

    client.post(reverse("generation:campaign_priority", args=[campaign.pk]), {"priority": "high"})

    campaign.refresh_from_db()
    assert campaign.priority == "high"


# --- command line --------------------------------------------------------------------------------


def test_campaign_control_cancels_from_the_command_line(campaign):
    out = io.StringIO()

    call_command("campaign_control", str(campaign.pk), "cancel", stdout=out)

    assert "40 queued item(s) cancelled" in out.getvalue()


def test_campaign_control_exits_2_on_an_illegal_action(campaign):
    with pytest.raises(CommandError) as caught:
        call_command("campaign_control", str(campaign.pk), "resume", stdout=io.StringIO())
    assert caught.value.returncode == 2
    assert "cannot resume a campaign that is running" in str(caught.value)


def test_hero_items_go_to_the_front_of_the_queue_even_in_a_normal_campaign(
    template_version, base_model, products_csv, redis_queues, django_capture_on_commit_callbacks
):
    from generation.services import recipe_create

    bulk = recipe_create(name="bulk", base_model=base_model, steps=2, width=64, height=64)
    hero = recipe_create(
        name="hero", base_model=base_model, purpose="hero", steps=4, width=64, height=64
    )
    csv = b"color,material,product_type,name,purpose\n" + b"".join(
        f"red,wool,hat,h{i},{'hero' if i % 5 == 0 else ''}\n".encode() for i in range(10)
    )
    redis_queues["generation"].empty()
    with django_capture_on_commit_callbacks(execute=True):
        campaign = campaign_submit(
            name="Mixed",
            template_version=template_version,
            recipe=bulk,
            csv_bytes=csv,
            recipes={"hero": hero},
            base_seed=3,
        )

    hero_jobs = set(campaign.items.filter(purpose="hero").values_list("job_id", flat=True))
    assert redis_queues["generation"].job_ids[0] in hero_jobs
    assert len(hero_jobs) == 1  # both hero rows share recipe and size: one batch
