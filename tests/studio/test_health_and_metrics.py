"""/healthz for load balancers, /metrics for Prometheus, JSON log lines."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from django.utils import timezone

from studio.logs import JsonFormatter
from tests.conftest import route_items


@pytest.fixture
def metrics_token(settings) -> str:
    settings.STUDIO_METRICS_TOKEN = "scrape-token-for-tests-0123456789"
    return settings.STUDIO_METRICS_TOKEN


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if (
            line.startswith(name + " ")
            or line.startswith(name + "{")
            and line.split(" ")[0] == name
        ):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


def test_healthz_answers_without_a_login_with_database_redis_and_queues(client, db, redis_queues):
    redis_queues["quality"].enqueue("review.jobs.score_items", ["x"])
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["database"]["latency_ms"] >= 0
    assert body["redis"]["ok"] is True
    assert set(body["queues"]) == {"generation", "quality", "delivery"}
    assert body["queues"]["quality"]["depth"] == 1
    assert body["queues"]["quality"]["oldest_job_age_s"] >= 0
    assert body["queues"]["generation"] == {"depth": 0, "oldest_job_age_s": None, "workers": 0}
    assert body["took_ms"] < 1000
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_is_503_when_redis_is_down_and_tells_no_secrets(client, db, settings):
    settings.REDIS_URL = "redis://:hunter2-secret@127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["redis"]["ok"] is False and body["redis"]["error"] == "ConnectionError"
    assert body["database"]["ok"] is True
    assert "hunter2" not in response.content.decode()


def test_metrics_refuse_anonymous_and_a_wrong_token(client, db, metrics_token):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_metrics_refuse_a_logged_in_user_who_is_not_staff(client, creative):
    client.force_login(creative)
    assert client.get("/metrics").status_code == 403


def test_metrics_report_items_generation_time_backlog_queues_and_this_months_cost(
    client, campaign, reviewer, redis_queues, metrics_token
):
    from generation.models import CostEntry, Item

    route_items(campaign, to="review", count=2)
    items = list(campaign.items.order_by("row_index", "variation"))
    Item.objects.filter(pk=items[0].pk).update(duration_s=0.3)
    Item.objects.filter(pk=items[1].pk).update(duration_s=3.0)
    CostEntry.objects.create(
        kind=CostEntry.Kind.COMPUTE,
        amount=Decimal("1.25"),
        currency="GBP",
        quantity=Decimal("1"),
        unit="gpu_second",
        rate=Decimal("1.25"),
        occurred_at=timezone.now(),
        month=(timezone.now()).date().replace(day=1),
        key="test-cost-this-month",
    )
    CostEntry.objects.create(
        kind=CostEntry.Kind.COMPUTE,
        amount=Decimal("100"),
        currency="GBP",
        quantity=Decimal("1"),
        unit="gpu_second",
        rate=Decimal("100"),
        occurred_at=timezone.now() - timezone.timedelta(days=62),
        month=(timezone.now() - timezone.timedelta(days=62)).date().replace(day=1),
        key="test-cost-long-ago",
    )
    redis_queues["generation"].enqueue("generation.jobs.generate_items", ["x"])

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    queued = campaign.items.filter(status="queued").count()
    assert f'studio_items{{status="queued"}} {float(queued)}' in text
    assert 'studio_items{status="review"} 2.0' in text
    assert "studio_review_backlog 2.0" in text
    assert 'studio_generation_seconds_bucket{le="0.5"} 1.0' in text
    assert 'studio_generation_seconds_bucket{le="4.0"} 2.0' in text
    assert 'studio_generation_seconds_bucket{le="+Inf"} 2.0' in text
    assert "studio_generation_seconds_sum 3.3" in text
    assert 'studio_cost_this_month{currency="GBP",kind="compute"} 1.25' in text
    assert 'studio_queue_depth{queue="generation"} 1.0' in text
    assert 'studio_workers{queue="generation"} 0.0' in text


def test_a_staff_user_may_read_the_metrics_in_a_browser(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "studio_items" in response.content.decode()


def test_json_log_lines_carry_the_campaign_and_item_ids():
    record = logging.LogRecord(
        "generation.jobs", logging.INFO, __file__, 1, "made %s", ("x",), None
    )
    record.campaign_id = "c-1"
    record.item = "i-2"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "made x"
    assert line["level"] == "INFO" and line["logger"] == "generation.jobs"
    assert line["campaign"] == "c-1" and line["item"] == "i-2"
    assert "job" not in line
