"""API v1 (/api/v1/): wiring above the apps, like the pages. OpenAPI 3.1 at
/api/v1/openapi.json, the interactive docs (ninja's bundled Swagger UI) at /api/v1/docs."""

from __future__ import annotations

from ninja import NinjaAPI

from studio.api import campaigns, catalogue, exports, items, registry, reports, review, webhooks
from studio.api.core import BrowserSession, TokenAuth, install_handlers

api = NinjaAPI(
    title="Studio API",
    version="1",
    description=(
        "Campaigns, items, review and the catalogue for integrators. Authenticate with a "
        "personal token (`Authorization: Bearer studio_…`) or the browser session (with CSRF). "
        "Errors are RFC 9457 problem+json; lists use cursor pagination (`next_cursor`); "
        "creating POSTs honour `Idempotency-Key`."
    ),
    urls_namespace="api-v1",
    auth=[TokenAuth(), BrowserSession()],
)
install_handlers(api)
api.add_router("", registry.router)
api.add_router("", campaigns.router)
api.add_router("", items.router)
api.add_router("", registry.reports)
api.add_router("", reports.router)
api.add_router("", review.router)
api.add_router("", catalogue.router)
api.add_router("", exports.router)
api.add_router("", webhooks.router)
