"""What the failure drill (bench/chaos.py) found, each pinned by a test: a worker's dead
database connection after a PostgreSQL restart, a late worker committing over the attempt
that took its item over, and the file a killed attempt left behind."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from PIL import Image

from generation.backends import GeneratedImage
from generation.models import Item
from generation.services.generate import _store_generated


@pytest.mark.django_db(transaction=True)
def test_a_job_after_the_database_dropped_its_connection_runs_on_a_fresh_one(handoffs):
    from generation.jobs import generate_items

    connection.ensure_connection()
    connection.connection.close()  # what a PostgreSQL restart leaves a worker with

    assert generate_items([]) == 0  # raised InterfaceError before: "connection already closed"


def _result() -> GeneratedImage:
    return GeneratedImage(
        image=Image.new("RGB", (64, 64), "white"), seed=1, duration_s=0.1, device="cpu"
    )


def _running(campaign, *, attempts: int) -> Item:
    item = campaign.items.first()
    Item.objects.filter(pk=item.pk).update(status=Item.Status.RUNNING, attempts=attempts)
    item.refresh_from_db()
    return item


def test_a_late_worker_cannot_commit_over_the_attempt_that_took_its_item_over(
    campaign, handoffs, django_capture_on_commit_callbacks
):
    late = _running(campaign, attempts=1)
    Item.objects.filter(pk=late.pk).update(attempts=2)  # the reconciler handed it on, claimed

    with django_capture_on_commit_callbacks(execute=True):
        committed = _store_generated(late, _result())

    assert committed is False
    item = Item.objects.get(pk=late.pk)
    assert (item.status, item.image.name) == (Item.Status.RUNNING, "")
    assert default_storage.listdir(f"items/{campaign.pk}")[1] == []  # its copy is dropped


def test_the_attempt_that_commits_removes_what_a_killed_attempt_left(
    campaign, handoffs, django_capture_on_commit_callbacks
):
    item = _running(campaign, attempts=2)
    left = default_storage.save(f"items/{campaign.pk}/{item.pk}.png", ContentFile(b"half"))
    other = default_storage.save(f"items/{campaign.pk}/someone-else.png", ContentFile(b"x"))

    with django_capture_on_commit_callbacks(execute=True):
        assert _store_generated(item, _result()) is True

    item.refresh_from_db()
    files = default_storage.listdir(f"items/{campaign.pk}")[1]
    assert sorted(f"items/{campaign.pk}/{name}" for name in files) == sorted(
        [item.image.name, other]
    )
    assert item.image.name != left
