"""`/metrics`: Prometheus text exposition, read from the database and Redis at scrape time.

A custom collector, not counters kept in each process: the web server runs several gunicorn
processes and the facts (items, reviews, the ledger) live in PostgreSQL anyway, so every
scrape gives the same answer whichever process serves it.

Access: ``Authorization: Bearer <STUDIO_METRICS_TOKEN>`` (a scraper) or the session of a staff
user or admin (someone looking in a browser).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from generation.models import CostEntry, Item
from review.models import ReviewTask
from studio import health
from studio.roles import ADMIN, has_role

# Seconds generating one image (its share of its batch): 64 px on a CPU to SDXL on a slow GPU.
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


class StudioCollector:
    def collect(self) -> Iterator[Metric]:
        items = GaugeMetricFamily("studio_items", "Items by status.", labels=["status"])
        counts = dict(Item.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in Item.Status.values:
            items.add_metric([status], counts.get(status, 0))
        yield items

        yield self._generation_seconds()

        backlog = ReviewTask.objects.filter(status=ReviewTask.Status.PENDING)
        yield GaugeMetricFamily(
            "studio_review_backlog", "Review tasks waiting for a decision.", value=backlog.count()
        )

        now = timezone.localtime()
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        cost = GaugeMetricFamily(
            "studio_cost_this_month",
            "Ledger costs booked to this month, by kind.",
            labels=["kind", "currency"],
        )
        sums = dict(
            CostEntry.objects.filter(month=month_start.date())
            .order_by()
            .values_list("kind")
            .annotate(total=Sum("amount"))
        )
        for kind in CostEntry.Kind.values:
            cost.add_metric([kind, settings.STUDIO_CURRENCY], float(sums.get(kind) or 0))
        yield cost

        redis_state, queues = health.queues_check()
        yield GaugeMetricFamily(
            "studio_redis_up", "1 when Redis answered this scrape.", value=int(redis_state["ok"])
        )
        depth = GaugeMetricFamily("studio_queue_depth", "Jobs waiting.", labels=["queue"])
        age = GaugeMetricFamily(
            "studio_queue_oldest_job_age_seconds",
            "Age of the oldest waiting job.",
            labels=["queue"],
        )
        workers = GaugeMetricFamily("studio_workers", "RQ workers alive.", labels=["queue"])
        for name, state in queues.items():
            depth.add_metric([name], state["depth"])
            age.add_metric([name], state["oldest_job_age_s"] or 0)
            workers.add_metric([name], state["workers"])
        yield depth
        yield age
        yield workers

    def _generation_seconds(self) -> Metric:
        """A cumulative histogram over every generated item (duration_s): one aggregate
        query, so rate() over it gives the recent distribution."""
        timed = Item.objects.filter(duration_s__isnull=False).order_by()
        aggregates = {
            f"le_{i}": Count("pk", filter=Q(duration_s__lte=bound))
            for i, bound in enumerate(GENERATION_BUCKETS)
        }
        row = timed.aggregate(total=Count("pk"), seconds=Sum("duration_s"), **aggregates)
        buckets = [(str(bound), row[f"le_{i}"] or 0) for i, bound in enumerate(GENERATION_BUCKETS)]
        buckets.append(("+Inf", row["total"] or 0))
        return HistogramMetricFamily(
            "studio_generation_seconds",
            "Seconds generating each image (its share of its batch).",
            buckets=buckets,
            sum_value=float(row["seconds"] or 0.0),
        )


registry = CollectorRegistry(auto_describe=False)
registry.register(StudioCollector())


def _allowed(request: HttpRequest) -> bool:
    token = settings.STUDIO_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    user = request.user
    return bool(
        user.is_authenticated and user.is_active and (user.is_staff or has_role(user, ADMIN))
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        anonymous = not request.user.is_authenticated and "Authorization" not in request.headers
        response = HttpResponse(
            "metrics need a bearer token (STUDIO_METRICS_TOKEN) or a staff login\n",
            status=401 if anonymous else 403,
            content_type="text/plain; charset=utf-8",
        )
        if anonymous:
            response["WWW-Authenticate"] = 'Bearer realm="studio-metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
