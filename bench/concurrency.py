"""Concurrency figures: review claims from many processes, and identical creates with one
Idempotency-Key, each process with its own PostgreSQL connection.

1. ``--claims`` review tasks, claimed by ``--processes`` reviewer processes at once (each its
   own reviewer: claim the next task, decide it, claim again; review.services.queue claims
   with ``FOR UPDATE SKIP LOCKED``). Prints how many claims were made and how many tasks
   were claimed by more than one process (goal 0), and claims per second.
2. ``--creates`` identical ``POST /api/v1/campaigns`` with one Idempotency-Key, from as many
   processes released together by a barrier (Django's test client in each process, so the
   request runs the whole API stack but no HTTP server). Prints the campaigns made (goal 1)
   and the answers (all 201 with the same id; the later ones replayed).

    python bench/concurrency.py                       # the embedded PostgreSQL/Redis
    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/concurrency.py
    python bench/concurrency.py --claims 1000 --processes 16 --creates 50

It creates a throwaway database (bench_<name>) from the models and drops it at the end.
tests/studio/test_concurrency.py runs the same functions smaller.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CSV_HEADER = "sku,product_type,name,color,material,category"


def _fork():
    # fork: the children inherit Django's settings (the test database's name included) and
    # open their own connections; the parent closes its own before forking.
    return multiprocessing.get_context("fork")


def review_backlog(*, tasks: int, template_version, recipe, user):
    """A campaign whose ``tasks`` items all wait in review, one pending ReviewTask each."""
    from generation.models import Item
    from review.models import ReviewTask
    from studio.launch import campaign_launch

    rows = [CSV_HEADER] + [f"R-{n},sneaker,Claim {n},red,mesh,footwear" for n in range(tasks)]
    campaign = campaign_launch(
        name="Claim race",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=("\n".join(rows) + "\n").encode(),
        csv_filename="claims.csv",
        user=user,
        base_seed=1,
    )
    items = list(campaign.items.all())
    Item.objects.filter(campaign=campaign).update(status=Item.Status.REVIEW, image="items/none.png")
    ReviewTask.objects.bulk_create(ReviewTask(item=item, campaign=campaign) for item in items)
    return campaign


def _claimer(user_id: int, campaign_id: str, start, results) -> None:
    from django.contrib.auth.models import User
    from django.db import connections

    from review.services import review_task_claim_next, review_task_decide

    connections.close_all()
    user = User.objects.get(pk=user_id)
    claimed: list[str] = []
    start.wait()
    try:
        while True:
            task = review_task_claim_next(user=user, campaign_id=campaign_id)
            if task is None:
                break
            claimed.append(str(task.pk))
            review_task_decide(
                task_id=task.pk, user=user, token=task.lease_token, decision="approved"
            )
        results.put(("ok", claimed))
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        connections.close_all()


def review_claims(*, campaign, reviewers: list) -> dict:
    """Every reviewer in its own process claims and decides until nothing is left."""
    from django.db import connections

    from review.models import ReviewTask

    context = _fork()
    start = context.Barrier(len(reviewers))
    results = context.Queue()
    connections.close_all()
    processes = [
        context.Process(target=_claimer, args=(user.pk, str(campaign.pk), start, results))
        for user in reviewers
    ]
    began = time.monotonic()
    for process in processes:
        process.start()
    answers = [results.get(timeout=600) for _ in processes]
    seconds = time.monotonic() - began
    for process in processes:
        process.join(timeout=60)
    errors = [detail for kind, detail in answers if kind == "error"]
    claims = [pk for kind, detail in answers if kind == "ok" for pk in detail]
    counts = Counter(claims)
    tasks = ReviewTask.objects.filter(campaign=campaign)
    return {
        "tasks": tasks.count(),
        "processes": len(reviewers),
        "claims": len(claims),
        "claimed_twice": sum(1 for n in counts.values() if n > 1),
        "decided": tasks.filter(status=ReviewTask.Status.DECIDED).count(),
        "errors": errors,
        "seconds": round(seconds, 2),
        "claims_per_second": round(len(claims) / seconds, 1) if seconds else None,
    }


def _creator(secret: str, body: str, key: str, start, results) -> None:
    from django.db import connections
    from django.test import Client

    connections.close_all()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    start.wait()
    try:
        response = client.post(
            "/api/v1/campaigns",
            data=body,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        data = response.json()
        results.put(
            (
                response.status_code,
                data.get("id"),
                response.headers.get("Idempotent-Replayed") == "true",
            )
        )
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        results.put((0, f"{type(exc).__name__}: {exc}", False))
    finally:
        connections.close_all()


def idempotent_creates(*, user, body: dict, count: int, key: str = "bench-create-1") -> dict:
    """``count`` processes POST the same body with the same Idempotency-Key at once."""
    from django.db import connections

    from generation.models import Campaign
    from studio.tokens import token_create

    _, secret = token_create(
        user=user, name="concurrency", scopes=["campaigns:read", "campaigns:write"]
    )
    context = _fork()
    start = context.Barrier(count)
    results = context.Queue()
    connections.close_all()
    payload = json.dumps(body)
    processes = [
        context.Process(target=_creator, args=(secret, payload, key, start, results))
        for _ in range(count)
    ]
    began = time.monotonic()
    for process in processes:
        process.start()
    answers = [results.get(timeout=600) for _ in processes]
    seconds = time.monotonic() - began
    for process in processes:
        process.join(timeout=60)
    statuses = Counter(status for status, _, _ in answers)
    return {
        "requests": count,
        "campaigns": Campaign.objects.filter(name=body["name"]).count(),
        "statuses": dict(sorted(statuses.items())),
        "ids": len({pk for status, pk, _ in answers if status == 201}),
        "replayed": sum(1 for _, _, replayed in answers if replayed),
        "errors": [pk for status, pk, _ in answers if status == 0],
        "seconds": round(seconds, 2),
    }


def _fixtures(reviewer_count: int):
    from django.contrib.auth.models import User

    from generation.services import (
        base_model_register,
        prompt_template_version_create,
        recipe_create,
    )
    from studio import roles
    from studio.services import roles_ensure, user_role_grant

    roles_ensure()
    creative = User.objects.create_user("bench-creative")
    user_role_grant(user=creative, role=roles.CREATIVE)
    reviewers = []
    for n in range(reviewer_count):
        reviewer = User.objects.create_user(f"bench-reviewer-{n}")
        user_role_grant(user=reviewer, role=roles.REVIEWER)
        reviewers.append(reviewer)
    model = base_model_register(name="bench-sd15", source="runwayml/stable-diffusion-v1-5")
    recipe = recipe_create(name="bench", base_model=model, steps=2, width=64, height=64)
    template = prompt_template_version_create(
        name="bench-product", body="photo of a {color} {material} {product_type}, {name}"
    )
    return creative, reviewers, template, recipe


def create_body(template, recipe, name: str = "Idempotent race") -> dict:
    rows = [
        {"sku": f"I-{n}", "product_type": "sneaker", "name": f"Race {n}", "color": "red"}
        | {"material": "mesh"}
        for n in range(20)
    ]
    return {"name": name, "template": template.pk, "recipe": recipe.pk, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--creates", type=int, default=50)
    args = parser.parse_args()

    warnings.filterwarnings("ignore", "No directory at")  # whitenoise: no collected static
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DEBUG", "false")
    from studio.embedded import ensure_environment, stop_at_exit

    stop_at_exit(ensure_environment())
    import django

    django.setup()
    from django.apps import apps
    from django.conf import settings
    from django.test.utils import (
        setup_databases,
        setup_test_environment,
        teardown_databases,
        teardown_test_environment,
    )

    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    default = settings.DATABASES["default"]
    default.setdefault("TEST", {})["NAME"] = f"bench_{default['NAME']}"
    settings.STUDIO_API_RATE_LIMIT = 1_000_000
    setup_test_environment()  # the test client's "testserver" host is allowed
    old = setup_databases(verbosity=0, interactive=False)
    try:
        creative, reviewers, template, recipe = _fixtures(args.processes)
        campaign = review_backlog(
            tasks=args.claims, template_version=template, recipe=recipe, user=creative
        )
        claims = review_claims(campaign=campaign, reviewers=reviewers)
        creates = idempotent_creates(
            user=creative, body=create_body(template, recipe), count=args.creates
        )
    finally:
        from django.db import connections

        connections.close_all()
        teardown_databases(old, verbosity=0)
        teardown_test_environment()
    print("Review claims")
    print(
        f"  {claims['claims']} claims of {claims['tasks']} tasks from {claims['processes']} "
        f"processes in {claims['seconds']} s ({claims['claims_per_second']}/s)"
    )
    print(f"  claimed twice: {claims['claimed_twice']} (goal 0); decided: {claims['decided']}")
    print(f"  errors: {claims['errors'] or 'none'}")
    print("Idempotent creates")
    print(
        f"  {creates['requests']} concurrent POST /api/v1/campaigns, one Idempotency-Key, "
        f"{creates['seconds']} s"
    )
    print(
        f"  campaigns made: {creates['campaigns']} (goal 1); answers {creates['statuses']}, "
        f"{creates['ids']} distinct id(s), {creates['replayed']} replayed"
    )
    print(f"  errors: {creates['errors'] or 'none'}")
    ok = (
        claims["claimed_twice"] == 0
        and claims["claims"] == claims["tasks"]
        and not claims["errors"]
        and creates["campaigns"] == 1
        and creates["ids"] == 1
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
