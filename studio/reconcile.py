"""The reconciler: every stage's rows checked against the queues, from the database's side.

Wiring above the apps (it calls generation's and the catalogue's own reconcilers), run by
``up`` every minute and by ``manage.py items_reconcile``.
"""

from __future__ import annotations

from catalogue.services import assets_reconcile, entries_reconcile
from generation.services import items_reconcile


def reconcile() -> dict[str, int]:
    return items_reconcile() | assets_reconcile() | entries_reconcile()
