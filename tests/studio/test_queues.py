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


@pytest.mark.django_db(transaction=True)
def test_several_jobs_go_in_one_round_trip_in_order_with_front_jobs_at_the_head(
    redis_queues, monkeypatch
):
    generation = redis_queues["generation"]
    queues.enqueue("generate", ["waiting"], job_id="generate-waiting")
    round_trips = []
    execute = type(generation.connection.pipeline()).execute
    monkeypatch.setattr(
        type(generation.connection.pipeline()),
        "execute",
        lambda pipe, *a, **k: round_trips.append(1) or execute(pipe, *a, **k),
    )

    with transaction.atomic():
        queues.enqueue_jobs(
            "generate",
            [
                queues.Job(["a", "b"], "generate-1"),
                queues.Job(["c"], "generate-2"),
                queues.Job([], "generate-empty"),  # nothing to do: no job
                queues.Job(["hero"], "generate-hero", at_front=True),
            ],
        )
        assert generation.count == 1

    assert len(round_trips) == 1
    assert generation.job_ids == ["generate-hero", "generate-waiting", "generate-1", "generate-2"]
    job = generation.fetch_job("generate-1")
    assert job.args == (["a", "b"],)
    assert job.func_name == "generation.jobs.generate_items"
    assert job.timeout and job.retries_left == 2


def test_an_unknown_stage_is_a_key_error():
    with pytest.raises(KeyError):
        queues.enqueue("publish", ["x"])
