"""The reconciler: every stage's rows checked against the queues, from the database's side.

Wiring above the apps (it calls generation's and the catalogue's own reconcilers), run by
``up`` every minute and by ``manage.py items_reconcile``.
"""

from __future__ import annotations

from catalogue.costs import storage_costs_accrue
from catalogue.delivery.exports import exports_reconcile
from catalogue.services import assets_reconcile, entries_reconcile
from generation.services import items_reconcile
from studio.tokens import idempotency_records_expire
from studio.webhooks import webhooks_reconcile


def reconcile() -> dict[str, int]:
    return (
        items_reconcile()
        | assets_reconcile()
        | entries_reconcile()
        | webhooks_reconcile()
        | exports_reconcile()
        | idempotency_records_expire()
        # Storage is booked a month at a time: the first run in a month books it (once).
        | {"storage_accrued": storage_costs_accrue()}
    )
