"""The one queue seam: a table of stages whose jobs exist, and enqueueing after commit only."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.db import transaction

from studio import queues


@pytest.mark.parametrize("stage", sorted(queues.STAGES))
def test_every_stage_names_a_queue_and_a_job_that_exist(settings, stage):
    spec = queues.STAGES[stage]
    module, _, name = spec.job.rpartition(".")
    assert callable(getattr(import_module(module), name))
    assert spec.queue in settings.RQ_QUEUES
    assert getattr(settings, spec.timeout_setting) > 0
    assert spec.retries


@pytest.mark.django_db(transaction=True)
def test_a_job_is_enqueued_when_the_transaction_commits_and_never_if_it_rolls_back(redis_queues):
    quality = redis_queues["quality"]
    with transaction.atomic():
        queues.enqueue("score", ["a", "b"])
        assert quality.count == 0  # not before the commit
    assert quality.count == 1
    (job,) = quality.jobs
    assert job.func_name == "review.jobs.score_items"
    assert job.args == (["a", "b"],)
    assert job.timeout and job.retries_left == 3

    with pytest.raises(RuntimeError), transaction.atomic():
        queues.enqueue("score", ["c"])
        raise RuntimeError("rolled back")
    assert quality.count == 1


def test_an_unknown_stage_is_a_key_error():
    with pytest.raises(KeyError):
        queues.enqueue("publish", ["x"])
