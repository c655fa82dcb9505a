"""Failure drill: a campaign through real workers while workers die, Redis forgets and
PostgreSQL restarts; the reconciler brings it home.

On the embedded default (studio.embedded: its own PostgreSQL and Redis under a throwaway
STUDIO_VAR_DIR, never the machine's shared servers): migrate, seed the tiny random-weight demo
model, launch one campaign of ``--items`` items, then start ``rqworker`` processes as ``up``
does (SimpleWorker, with a scheduler): ``--gen-workers`` on the generation queue,
``--quality-workers`` on the quality queue and one delivery worker. While they work, this
process is the reviewer (it claims and decides every image the scorer sends to review) and
runs the reconciler (studio.reconcile) every ``--reconcile-every`` seconds, like ``up`` does
every minute. Faults, spread over the run by progress: ``--kills`` ``kill -9`` of random
generation/quality workers (each replaced by a new one at once), one Redis ``FLUSHALL`` and
one PostgreSQL restart (``--no-pg-restart`` to skip it).

Figures printed at the end (each has a goal):

- items terminal: approved, rejected, failed or cancelled (goal: all of them);
- committed twice: items with more than one image file kept (``items/<campaign>/<item>*``)
  or more than one asset (goal 0). Items generated again after a fault (attempts above one)
  are counted apart: that is the recovery working. "Charged twice" (two compute entries in
  the cost ledger for one item) is shown too: it means the image really was made twice, the
  second attempt's commit winning, because a lease ran out under a live worker; with the
  drill's short lease a slow first job can do that, with the production hour it cannot;
- orphan files: files under MEDIA_ROOT that no FileField row names (goal 0);
- review decisions lost: decisions this process made (and saw committed) that are no longer
  on their task or whose item's status does not follow them (goal 0);
- seconds from the last fault to the last item finished.

    python bench/chaos.py                       # 200 items, the full drill
    python bench/chaos.py --items 20 --gen-workers 1 --quality-workers 1 --kills 2

The exit status is 0 only when every goal is met. ``--json`` prints the figures as JSON too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORKER_CLASS = "rq.worker.SimpleWorker"
DB_ERRORS: tuple[type[BaseException], ...] = ()


@dataclass
class Worker:
    queue: str
    process: subprocess.Popen
    log: Path


@dataclass
class Drill:
    args: argparse.Namespace
    var: Path
    log_dir: Path
    workers: list[Worker] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)  # task id -> decision
    started: float = 0.0
    serial: int = 0

    # --- workers ---------------------------------------------------------------------------

    def spawn(self, queue: str) -> Worker:
        self.serial += 1
        log = self.log_dir / f"worker-{queue}-{self.serial}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "manage.py"),
                "rqworker",
                queue,
                "--worker-class",
                WORKER_CLASS,
                "--with-scheduler",
                "--name",
                f"chaos-{queue}-{self.serial}",
            ],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        worker = Worker(queue, process, log)
        self.workers.append(worker)
        return worker

    def kill_random(self, rng: random.Random) -> str:
        victims = [w for w in self.workers if w.queue != "delivery" and w.process.poll() is None]
        victim = rng.choice(victims)
        _killpg(victim.process, signal.SIGKILL)
        victim.process.wait()
        self.workers.remove(victim)
        self.spawn(victim.queue)
        return f"kill -9 {victim.queue} worker pid {victim.process.pid}"

    def stop_workers(self) -> None:
        for worker in self.workers:
            _killpg(worker.process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for worker in self.workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _killpg(worker.process, signal.SIGKILL)
            worker.process.wait()

    def fault(self, what: str) -> None:
        self.faults.append((time.monotonic(), what))
        self.say(what)

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {message}", flush=True)


def _killpg(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- faults --------------------------------------------------------------------------------


def redis_flushall() -> None:
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushall()


def postgres_restart() -> None:
    """Stop the embedded PostgreSQL (fast: every client is cut off) and start it again."""
    from django.db import connections

    from studio import embedded

    connections.close_all()
    url = os.environ["DATABASE_URL"]
    embedded._stop_postgres()
    time.sleep(1.0)  # a moment of "connection refused" for everyone
    restarted, _ = embedded._postgres()
    if restarted != url:
        raise RuntimeError(f"PostgreSQL came back at {restarted}, not {url}")


# --- the run -------------------------------------------------------------------------------


def _setup(args: argparse.Namespace, var: Path):
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("STUDIO_EMBEDDED", None)
    os.environ.update(
        STUDIO_VAR_DIR=str(var),
        STUDIO_MEDIA_ROOT=str(var / "media"),
        STUDIO_STATIC_ROOT=str(var / "static"),
        STUDIO_MODELS_DIR=str(args.models_dir),
        DJANGO_SETTINGS_MODULE="studio.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "chaos-drill-only",
        DEBUG="false",
        STUDIO_DEVICE="cpu",
        STUDIO_TORCH_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        # Short leases and scoring timeout, so work lost with a worker comes back in seconds
        # rather than the production hour.
        STUDIO_ITEM_LEASE_SECONDS=str(args.lease),
        STUDIO_REVIEW_LEASE_SECONDS="30",
        STUDIO_QUALITY_JOB_TIMEOUT=str(args.quality_timeout),
        STUDIO_GENERATION_JOB_TIMEOUT="300",
        STUDIO_RECONCILE_GRACE_SECONDS=str(args.grace),
    )
    from studio.embedded import ensure_environment

    servers = ensure_environment()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return servers


def _launch(items: int):
    from django.contrib.auth.models import Group, User

    from generation.demo import demo_seed
    from studio import roles
    from studio.launch import campaign_launch
    from studio.services import roles_ensure

    roles_ensure()
    seeded = demo_seed()
    reviewer, _ = User.objects.get_or_create(username="chaos-reviewer")
    reviewer.groups.add(Group.objects.get(name=roles.REVIEWER))
    creative, _ = User.objects.get_or_create(username="chaos-creative")
    creative.groups.add(Group.objects.get(name=roles.CREATIVE))
    template = seeded["templates"][0]  # product-photo: fits the product columns below
    colours = ["red", "black", "white", "blue", "green", "grey", "yellow", "orange"]
    lines = ["sku,product_type,name,color,material,category"]
    for n in range(items):
        lines.append(f"CH-{n:05d},sneaker,Drill {n},{colours[n % len(colours)]},mesh,footwear")
    # Thresholds that send a good share to review, so decisions are made during the faults.
    campaign = campaign_launch(
        name="Chaos drill",
        template_version=template,
        recipe=seeded["recipe"],
        csv_bytes=("\n".join(lines) + "\n").encode(),
        csv_filename="drill.csv",
        variations=1,
        user=creative,
        base_seed=7,
        approve_at=0.99,
        reject_below=0.01,
    )
    return campaign, reviewer


def _progress(campaign_id) -> dict[str, int]:
    from django.db.models import Count

    from generation.models import Item

    rows = Item.objects.filter(campaign_id=campaign_id).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def _review_some(drill: Drill, reviewer, campaign_id, budget: int) -> None:
    """Decide up to ``budget`` images waiting in review (alternately approve and reject)."""
    from review.services import review_task_claim_next, review_task_decide

    for _ in range(budget):
        task = review_task_claim_next(user=reviewer, campaign_id=campaign_id)
        if task is None:
            return
        decision = "approved" if len(drill.decisions) % 2 == 0 else "rejected"
        review_task_decide(
            task_id=task.pk,
            user=reviewer,
            token=task.lease_token,
            decision=decision,
            reason_code="" if decision == "approved" else "blur",
        )
        drill.decisions[str(task.pk)] = decision


def _done(campaign_id) -> bool:
    from catalogue.models import Asset
    from generation.models import Item

    items = Item.objects.filter(campaign_id=campaign_id)
    if items.exclude(status__in=Item.FINAL_STATUSES).exists():
        return False
    approved = items.filter(status=Item.Status.APPROVED)
    return Asset.objects.filter(item__in=approved).count() == approved.count()


def run(args: argparse.Namespace) -> dict:
    var = Path(tempfile.mkdtemp(prefix="studio-chaos-")) / "var"
    log_dir = var.parent / "logs"
    log_dir.mkdir(parents=True)
    drill = Drill(args=args, var=var, log_dir=log_dir)
    drill.started = time.monotonic()
    servers = _setup(args, var)
    from django.db import DatabaseError, InterfaceError, OperationalError, connections

    global DB_ERRORS
    DB_ERRORS = (OperationalError, InterfaceError, DatabaseError)
    from studio.reconcile import reconcile

    rng = random.Random(args.seed)
    figures: dict = {}
    try:
        campaign, reviewer = _launch(args.items)
        drill.say(f"campaign {campaign.pk}: {args.items} items; var {var}")
        for _ in range(args.gen_workers):
            drill.spawn("generation")
        for _ in range(args.quality_workers):
            drill.spawn("quality")
        drill.spawn("delivery")
        # Faults at these shares of items generated (left queued/running), shuffled in order.
        plan = ["kill"] * args.kills + ["flushall"] + ([] if args.no_pg_restart else ["pg"])
        rng.shuffle(plan)
        points = [0.08 + 0.62 * n / max(1, len(plan) - 1) for n in range(len(plan))]
        schedule = list(zip(points, plan, strict=True))
        deadline = drill.started + args.seconds
        last_reconcile = 0.0
        last_report = 0.0
        finished_at: float | None = None
        while time.monotonic() < deadline:
            try:
                counts = _progress(campaign.pk)
                generated = args.items - counts.get("queued", 0) - counts.get("running", 0)
                while schedule and generated >= schedule[0][0] * args.items:
                    _, kind = schedule.pop(0)
                    if kind == "kill":
                        drill.fault(drill.kill_random(rng))
                    elif kind == "flushall":
                        redis_flushall()
                        drill.fault("Redis FLUSHALL")
                    else:
                        drill.say("PostgreSQL restart: stopping it")
                        postgres_restart()
                        drill.fault("PostgreSQL restart (stopped, started again)")
                        continue
                _review_some(drill, reviewer, campaign.pk, budget=10)
                now = time.monotonic()
                if now - last_reconcile >= args.reconcile_every:
                    last_reconcile = now
                    found = reconcile()
                    if any(found.values()):
                        drill.say(f"reconciler: { {k: v for k, v in found.items() if v} }")
                if now - last_report >= 10:
                    last_report = now
                    drill.say(f"items {dict(sorted(counts.items()))}")
                for worker in list(drill.workers):
                    if worker.process.poll() is not None:
                        drill.say(f"{worker.queue} worker exited by itself; replacing it")
                        drill.workers.remove(worker)
                        drill.spawn(worker.queue)
                if not schedule and _done(campaign.pk):
                    finished_at = time.monotonic()
                    break
            except DB_ERRORS as exc:
                drill.say(f"driver: database unavailable ({type(exc).__name__}); retrying")
                connections.close_all()
            time.sleep(args.tick)
        drill.stop_workers()
        connections.close_all()
        figures = measure(drill, campaign.pk, finished_at)
    finally:
        drill.stop_workers()
        connections.close_all()
        from studio import embedded

        embedded.stop(servers)
        if args.keep:
            print(f"kept {var.parent} (worker logs under logs/)")
        else:
            shutil.rmtree(var.parent, ignore_errors=True)
    return figures


# --- figures -------------------------------------------------------------------------------


def measure(drill: Drill, campaign_id, finished_at: float | None) -> dict:
    from django.apps import apps
    from django.conf import settings
    from django.db import models
    from django.db.models import Count, Max

    from catalogue.models import Asset
    from generation.models import CostEntry, Item
    from review.models import ReviewTask

    items = Item.objects.filter(campaign_id=campaign_id)
    total = items.count()
    terminal = items.filter(status__in=Item.FINAL_STATUSES).count()
    by_status = dict(items.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))

    media = Path(settings.MEDIA_ROOT)
    on_disk = {
        str(path.relative_to(media))
        for path in media.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    }
    # Every file any row names, whichever app and field.
    named: set[str] = set()
    for model in apps.get_models():
        for fld in model._meta.get_fields():
            if isinstance(fld, models.FileField):
                named.update(
                    n
                    for n in model.objects.exclude(**{fld.name: ""}).values_list(
                        fld.name, flat=True
                    )
                    if n
                )
    orphans = sorted(on_disk - named)
    files_per_item: dict[str, int] = {}
    for name in on_disk:
        if name.startswith(f"items/{campaign_id}/"):
            stem = Path(name).stem[:36]
            files_per_item[stem] = files_per_item.get(stem, 0) + 1
    kept_twice = sorted(pk for pk, n in files_per_item.items() if n > 1)
    charged = (
        CostEntry.objects.filter(item__campaign_id=campaign_id, kind=CostEntry.Kind.COMPUTE)
        .values("item")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    charged_twice = sorted(str(row["item"]) for row in charged)
    assets_twice = list(
        Asset.objects.filter(item__campaign_id=campaign_id)
        .values("item")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("item", flat=True)
    )
    regenerated = items.filter(attempts__gt=1).count()

    lost = []
    tasks = {str(t.pk): t for t in ReviewTask.objects.filter(pk__in=list(drill.decisions))}
    for task_id, decision in drill.decisions.items():
        task = tasks.get(task_id)
        if task is None or task.decision != decision or task.item.status != decision:
            lost.append(task_id)

    last_finished = items.aggregate(at=Max("finished_at"))["at"]
    last_fault = drill.faults[-1][0] if drill.faults else drill.started
    recovery = None if finished_at is None else round(finished_at - last_fault, 1)
    figures = {
        "items": total,
        "items_terminal": terminal,
        "by_status": by_status,
        "regenerated_after_fault": regenerated,
        "committed_twice": len(set(kept_twice) | set(assets_twice)),
        "kept_two_files": len(kept_twice),
        "charged_twice": len(charged_twice),
        "two_assets": len(assets_twice),
        "orphan_files": len(orphans),
        "orphan_examples": orphans[:5],
        "review_decisions": len(drill.decisions),
        "review_decisions_lost": len(lost),
        "faults": [what for _, what in drill.faults],
        "seconds_total": round((finished_at or time.monotonic()) - drill.started, 1),
        "seconds_last_fault_to_last_item": recovery,
        "last_item_finished_at": last_finished.isoformat() if last_finished else None,
    }
    return figures


def print_figures(figures: dict) -> None:
    print()
    print("Failure drill")
    print(f"  faults: {len(figures['faults'])}: " + "; ".join(figures["faults"]))
    print(f"  items terminal:                {figures['items_terminal']}/{figures['items']}")
    print(f"    by status:                   {figures['by_status']}")
    print(f"  generated again after a fault: {figures['regenerated_after_fault']} (expected > 0)")
    print(
        f"  committed twice:               {figures['committed_twice']} "
        f"(two files kept {figures['kept_two_files']}, two assets {figures['two_assets']}); "
        f"charged twice {figures['charged_twice']}"
    )
    print(
        f"  orphan files:                  {figures['orphan_files']} {figures['orphan_examples']}"
    )
    print(
        f"  review decisions lost:         {figures['review_decisions_lost']}"
        f"/{figures['review_decisions']}"
    )
    print(f"  last fault -> last item done:  {figures['seconds_last_fault_to_last_item']} s")
    print(f"  whole run:                     {figures['seconds_total']} s")


def goals_met(figures: dict) -> bool:
    return (
        figures["items_terminal"] == figures["items"]
        and figures["committed_twice"] == 0
        and figures["orphan_files"] == 0
        and figures["review_decisions_lost"] == 0
        and figures["seconds_last_fault_to_last_item"] is not None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=900, help="give up after this long")
    parser.add_argument("--gen-workers", type=int, default=2)
    parser.add_argument("--quality-workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--no-pg-restart", action="store_true")
    parser.add_argument("--lease", type=int, default=30, help="STUDIO_ITEM_LEASE_SECONDS")
    parser.add_argument("--quality-timeout", type=int, default=15)
    parser.add_argument(
        "--grace", type=int, default=10, help="STUDIO_RECONCILE_GRACE_SECONDS (60 in production)"
    )
    parser.add_argument("--reconcile-every", type=float, default=5.0)
    parser.add_argument("--tick", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--models-dir", default=str(REPO / "var" / "chaos-models"))
    parser.add_argument("--keep", action="store_true", help="keep the var dir and worker logs")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args)
    print_figures(figures)
    if args.json:
        print("FIGURES " + json.dumps(figures, sort_keys=True))
    return 0 if goals_met(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
