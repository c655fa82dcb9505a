"""RQ jobs of the generation stage (studio.queues.STAGES["generate"]): ids in, a service call."""

from __future__ import annotations

from generation.services import items_generate
from studio.queues import fresh_connections


@fresh_connections
def generate_items(item_ids: list[str]) -> int:
    return items_generate(item_ids=item_ids)
