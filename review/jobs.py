"""RQ jobs of the scoring stage (studio.queues.STAGES["score"])."""

from __future__ import annotations

from review.services import items_score
from studio.queues import fresh_connections


@fresh_connections
def score_items(item_ids: list[str]) -> list[str]:
    """A batch (one generation batch): CLIP embeds the images together."""
    return [result.verdict for result in items_score(item_ids=item_ids)]
