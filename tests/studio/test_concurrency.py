"""Concurrency against the real PostgreSQL, each worker a process with its own connection:
review claims never hand one image to two reviewers, and identical creates with one
Idempotency-Key make one campaign. bench/concurrency.py runs the same functions at full size
(1,000 claims from 16 processes, 50 creates)."""

from __future__ import annotations

import importlib.util

import pytest

from studio import roles
from studio.services import user_role_grant
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_concurrency", __file__.rsplit("/tests/", 1)[0] + "/bench/concurrency.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_hundred_claims_from_four_processes_never_claim_an_image_twice(
    creative, template_version, recipe, redis_queues
):
    bench = _bench()
    reviewers = [make_user(f"claimer-{n}", roles.REVIEWER) for n in range(4)]
    campaign = bench.review_backlog(
        tasks=200, template_version=template_version, recipe=recipe, user=creative
    )

    figures = bench.review_claims(campaign=campaign, reviewers=reviewers)

    assert figures["errors"] == []
    assert figures["claims"] == figures["tasks"] == figures["decided"] == 200
    assert figures["claimed_twice"] == 0


def test_ten_concurrent_creates_with_one_idempotency_key_make_one_campaign(
    settings, creative, template_version, recipe, redis_queues
):
    bench = _bench()
    settings.STUDIO_API_RATE_LIMIT = 10_000
    user_role_grant(user=creative, role=roles.CREATIVE)

    figures = bench.idempotent_creates(
        user=creative, body=bench.create_body(template_version, recipe), count=10
    )

    assert figures["errors"] == []
    assert figures["campaigns"] == 1
    assert figures["statuses"] == {201: 10}
    assert figures["ids"] == 1
    assert figures["replayed"] == 9
