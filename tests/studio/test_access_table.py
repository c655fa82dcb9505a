"""Access rules as one table: every route of the URLconf × every persona × GET and POST.

The routes come from the URLconf itself (get_resolver(), namespaces included), so a route
added without an entry in TABLE fails ``test_every_route_has_an_entry`` with its name. Each
entry holds the status each persona gets, in PERSONAS order:

    anonymous  outsider (logged in, no role)  creative  reviewer  manager  admin

for GET and for POST with an empty body (the test client skips CSRF checks). The rules the
table follows: anonymous is sent to the login page (302) on pages and gets 401 from the API;
a role the page is not for gets 403; the right role gets 200, or 302 (a form that redirects),
400 (an empty POST is bad input) or 405 (a method the route does not take). 404 is an object
the persona may not see (another user's token or webhook).

The Django admin and the queue dashboard (django_rq) are one rule: every route there is
wrapped by the admin site's (or staff_member_required's) staff check, so anyone not staff is
sent to the admin login; the admin role is staff (studio.services.user_role_grant). Their
routes are still requested one by one, as every persona but the admin (a custom admin view
that forgot admin_view() would let a creative in, and fail here).

Campaigns belong to the install, not to a team: every role sees every campaign (generation
views' _get_campaign_for_user, the API's campaign queries), so the table has no "other team"
persona. Tokens and webhooks are per user: another user's are 404.

All requests of one persona run in a savepoint that is rolled back, so a POST that changes an
object (cancel a campaign, revoke a token) leaves it as it was for the next persona.
"""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.admin.sites import site as admin_site
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

PERSONAS = ("anonymous", "outsider", "creative", "reviewer", "manager", "admin")
LOGIN_PREFIXES = ("/accounts/login/", "/admin/login/")
NO_SUCH_OBJECT = "00000000-0000-4000-8000-000000000000"

# Route name -> (GET statuses, POST statuses), one per persona in PERSONAS order.
# fmt: off
TABLE: dict[str, tuple[str, str]] = {
    "admin:django_rq_home_json": ("401 401 401 401 401 *", "401 401 401 401 401 *"),
    "admin:django_rq_metrics": ("401 401 401 401 401 *", "401 401 401 401 401 *"),
    "admin:login": ("200 200 200 200 200 302", "200 200 200 200 200 200"),
    "api-v1:api-root": ("404 404 404 404 404 404", "404 404 404 404 404 404"),
    "api-v1:campaign_cancel": ("405 405 405 405 405 405", "401 403 200 403 403 200"),
    "api-v1:campaign_create": ("401 403 200 200 200 200", "401 403 400 403 403 400"),
    "api-v1:campaign_create_csv": ("405 405 405 405 405 405", "401 403 422 403 403 422"),
    "api-v1:campaign_estimate_get": ("405 405 405 405 405 405", "401 403 400 400 400 400"),
    "api-v1:campaign_get": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    "api-v1:campaign_pause": ("405 405 405 405 405 405", "401 403 200 403 403 200"),
    "api-v1:campaign_priority": ("405 405 405 405 405 405", "401 403 400 403 403 400"),
    "api-v1:campaign_resume": ("405 405 405 405 405 405", "401 403 422 403 403 422"),
    "api-v1:campaign_retry": ("405 405 405 405 405 405", "401 403 422 403 403 422"),
    "api-v1:campaigns": ("401 403 403 403 200 200", "405 405 405 405 405 405"),
    "api-v1:campaigns_list": ("401 403 200 200 200 200", "401 403 400 403 403 400"),
    "api-v1:claim": ("405 405 405 405 405 405", "401 403 403 400 403 400"),
    "api-v1:decide": ("405 405 405 405 405 405", "401 403 403 400 403 400"),
    "api-v1:deliveries_list": ("401 403 200 404 404 200", "405 405 405 405 405 405"),
    "api-v1:events": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    # No export exists in this test: 404 once the role is let in.
    "api-v1:export_download": ("401 403 404 404 404 404", "405 405 405 405 405 405"),
    "api-v1:export_get": ("401 403 404 404 404 404", "405 405 405 405 405 405"),
    "api-v1:export_new": ("405 405 405 405 405 405", "401 403 400 400 400 400"),
    "api-v1:hosting": ("401 403 403 403 200 200", "405 405 405 405 405 405"),
    "api-v1:item_get": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    "api-v1:item_image": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    # The world's asset has no renditions: a role with catalogue:read gets the clear 404.
    "api-v1:item_rendition": ("401 403 404 404 404 404", "405 405 405 405 405 405"),
    "api-v1:items_list": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    "api-v1:openapi-json": ("200 200 200 200 200 200", "200 200 200 200 200 200"),
    "api-v1:openapi-view": ("200 200 200 200 200 200", "200 200 200 200 200 200"),
    "api-v1:overview": ("401 403 403 403 200 200", "405 405 405 405 405 405"),
    "api-v1:prompts": ("401 403 403 403 200 200", "405 405 405 405 405 405"),
    "api-v1:recipes": ("401 403 403 403 200 200", "405 405 405 405 405 405"),
    "api-v1:recipes_list": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    "api-v1:redeliver": ("405 405 405 405 405 405", "401 403 202 404 404 202"),
    "api-v1:release": ("405 405 405 405 405 405", "401 403 403 400 403 400"),
    "api-v1:report_costs": ("401 403 403 403 200 200", "405 405 405 405 405 405"),
    "api-v1:search": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    "api-v1:subscription_create": ("401 403 200 200 200 200", "401 403 400 400 400 400"),
    "api-v1:subscription_delete": ("401 403 200 404 404 200", "405 405 405 405 405 405"),
    "api-v1:subscription_get": ("401 403 200 404 404 200", "405 405 405 405 405 405"),
    "api-v1:subscription_update": ("401 403 200 404 404 200", "405 405 405 405 405 405"),
    "api-v1:subscriptions_list": ("401 403 200 200 200 200", "401 403 400 400 400 400"),
    "api-v1:template_get": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    "api-v1:templates_list": ("401 403 200 200 200 200", "405 405 405 405 405 405"),
    "api_access": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "catalogue:asset": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "catalogue:asset_download": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "catalogue:asset_rights": ("405 405 405 405 405 405", "302 403 400 403 400 400"),
    "catalogue:delivery": ("302 403 200 403 200 200", "302 403 400 403 400 400"),
    # No export exists in this test: 404 once the role is let in.
    "catalogue:export": ("302 403 404 403 404 404", "405 405 405 405 405 405"),
    "catalogue:export_download": ("302 403 404 403 404 404", "405 405 405 405 405 405"),
    "catalogue:export_new": ("405 405 405 405 405 405", "302 403 400 403 400 400"),
    "catalogue:exports": ("302 403 200 403 200 200", "405 405 405 405 405 405"),
    "catalogue:media": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    # No rendition exists in this test: 404 once the role is let in.
    "catalogue:rendition_download": ("302 403 404 404 404 404", "405 405 405 405 405 405"),
    "catalogue:schedule": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "catalogue:schedule_add": ("405 405 405 405 405 405", "302 403 400 403 400 400"),
    "catalogue:schedule_csv": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "catalogue:schedule_delete": ("405 405 405 405 405 405", "302 403 302 403 302 302"),
    "catalogue:schedule_ics": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "catalogue:search": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "catalogue:selection_rights": ("405 405 405 405 405 405", "302 403 400 403 400 400"),
    "catalogue:selection_tags": ("405 405 405 405 405 405", "302 403 400 403 400 400"),
    "django_rq:home_json": ("401 401 401 401 401 *", "401 401 401 401 401 *"),
    "django_rq:metrics": ("401 401 401 401 401 *", "401 401 401 401 401 *"),
    "generation:budgets": ("302 403 403 403 200 200", "302 403 403 403 200 200"),
    "generation:campaign": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "generation:campaign_action": ("405 405 405 405 405 405", "302 403 302 403 403 302"),
    "generation:campaign_budget": ("405 405 405 405 405 405", "302 403 403 403 302 302"),
    "generation:campaign_create": ("302 403 200 403 403 200", "302 403 400 403 403 400"),
    "generation:campaign_preview": ("405 405 405 405 405 405", "302 403 200 403 403 200"),
    "generation:campaign_priority": ("405 405 405 405 405 405", "302 403 302 403 403 302"),
    "generation:campaign_promote": ("405 405 405 405 405 405", "302 403 403 403 302 302"),
    "generation:campaign_trial": ("405 405 405 405 405 405", "302 403 302 403 302 302"),
    "generation:dashboard": ("302 403 200 200 200 200", "405 405 405 405 405 405"),
    "generation:sample_csv": ("302 403 200 403 403 200", "405 405 405 405 405 405"),
    "healthz": ("200 200 200 200 200 200", "405 405 405 405 405 405"),
    "login": ("200 302 302 302 302 302", "200 302 302 302 302 302"),
    "metrics": ("401 403 403 403 403 200", "405 405 405 405 405 405"),
    "reports:campaign_value": ("405 405 405 405 405 405", "302 403 403 403 302 302"),
    "reports:campaigns": ("302 403 403 403 200 200", "405 405 405 405 405 405"),
    "reports:hosting": ("302 403 403 403 200 200", "405 405 405 405 405 405"),
    "reports:overview": ("302 403 403 403 200 200", "405 405 405 405 405 405"),
    "reports:prompts": ("302 403 403 403 200 200", "405 405 405 405 405 405"),
    "reports:recipes": ("302 403 403 403 200 200", "405 405 405 405 405 405"),
    "reports:version_activate": ("405 405 405 405 405 405", "302 403 403 403 302 302"),
    "reports:versions": ("302 403 403 403 200 200", "405 405 405 405 405 405"),
    "review:calibrate": ("302 403 403 403 200 200", "302 403 403 403 200 200"),
    "review:decide": ("405 405 405 405 405 405", "302 403 403 302 403 302"),
    "review:grid": ("302 403 403 200 403 200", "405 405 405 405 405 405"),
    "review:grid_decide": ("405 405 405 405 405 405", "302 403 403 302 403 302"),
    "review:queue": ("302 403 403 200 403 200", "405 405 405 405 405 405"),
    "review:references": ("302 403 200 403 200 200", "302 403 400 403 400 400"),
    "review:send_back": ("405 405 405 405 405 405", "302 403 403 302 403 302"),
    "review:skip": ("405 405 405 405 405 405", "302 403 403 302 403 302"),
    "review:stats": ("302 403 403 200 200 200", "405 405 405 405 405 405"),
    "review:undo": ("405 405 405 405 405 405", "302 403 403 302 403 302"),
    "token_new": ("405 405 405 405 405 405", "302 403 400 400 400 400"),
    "token_revoke": ("405 405 405 405 405 405", "302 403 302 302 302 302"),
    "webhook_delete": ("405 405 405 405 405 405", "302 403 302 404 404 302"),
    "webhook_detail": ("302 403 200 404 404 200", "405 405 405 405 405 405"),
    "webhook_new": ("405 405 405 405 405 405", "302 403 400 400 400 400"),
    "webhook_redeliver": ("405 405 405 405 405 405", "302 403 302 404 404 302"),
    "webhook_toggle": ("405 405 405 405 405 405", "302 403 302 404 404 302"),
}
# fmt: on

# The admin site and django_rq: everyone but staff is sent to the admin login (302; the
# dashboard's JSON stats answer 401). What staff get there ("*": not requested here;
# tests/studio/test_admin_pages.py covers the admin pages) is the admin's business.
ADMIN_STAFF = ("302 302 302 302 302 *", "302 302 302 302 302 *")
# The admin's old change URLs (admin/<app>/<model>/<id>/) and its catch-all route.
ADMIN_OLD_CHANGE_URL = ADMIN_STAFF
ADMIN_CATCH_ALL = "admin/(?P<url>.*)$"
RQ_STAFF = ADMIN_STAFF


# Routes in the table that are not requested, with the reason.
NOT_REQUESTED: dict[str, str] = {
    "logout": "ends the session the next requests run under (its rule: POST only, 405 on GET)",
}


def _rq_placeholder(name: str) -> bool:
    """django_rq registers a table-less placeholder model ("dashboard") with the admin only
    for its changelist link; its change/delete/history pages query a table that does not
    exist (500 in django_rq itself), so only the changelist is requested."""
    return (
        name.startswith("admin:django_rq_dashboard_") and not name.endswith("_changelist")
    ) or name == "admin/django_rq/dashboard/<path:object_id>/"


def _walk(patterns, namespace: str | None = None, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, inner, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            name = entry.name and (f"{namespace}:{entry.name}" if namespace else entry.name)
            yield name or prefix + str(entry.pattern), entry


def routes() -> dict[str, URLPattern]:
    found: dict[str, URLPattern] = {}
    for name, pattern in _walk(get_resolver().url_patterns):
        found.setdefault(name, pattern)  # one name, two patterns (django_rq): the first
    return found


def expected(name: str) -> tuple[str, str] | None:
    if name in TABLE:
        return TABLE[name]
    if name.startswith("django_rq:") or name.startswith("admin:django_rq_"):
        return RQ_STAFF
    if re.fullmatch(r"admin/\w+/\w+/<path:object_id>/", name):
        return ADMIN_OLD_CHANGE_URL
    if name == ADMIN_CATCH_ALL:
        return ADMIN_STAFF
    if name.startswith("admin:"):
        return ADMIN_STAFF
    return None


def _admin_model(prefix: str):
    for model in admin_site._registry:
        if f"{model._meta.app_label}_{model._meta.model_name}" == prefix:
            return model
    return None


def test_every_route_has_an_entry():
    missing = sorted(
        name
        for name in routes()
        if expected(name) is None and name not in NOT_REQUESTED and not _rq_placeholder(name)
    )

    assert missing == [], f"routes with no access rule in TABLE: {missing}"


def test_the_table_names_no_route_that_is_gone():
    assert sorted(set(TABLE) - set(routes())) == []


# --- the objects the routes need -----------------------------------------------------------


@pytest.fixture
def world(
    settings, campaign, review_items, asset, creative, reviewer, manager, admin_user, outsider
):
    from studio import tokens, webhooks
    from studio.services import user_role_grant

    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = True
    settings.STUDIO_API_RATE_LIMIT = 100_000
    user_role_grant(user=admin_user, role="admin")  # staff, as the demo admin is
    token, _ = tokens.token_create(
        user=creative, name="table", scopes=tokens.scopes_allowed(creative)
    )
    subscription = webhooks.subscription_create(
        user=creative, url="http://127.0.0.1:9/hook", events=["campaign.completed"]
    )
    event = webhooks.event_emit("campaign.completed", {"campaign": {"id": str(campaign.pk)}})
    delivery = event.deliveries.get(subscription=subscription)
    task = review_items[0].review_task
    return {
        "users": {
            "outsider": outsider,
            "creative": creative,
            "reviewer": reviewer,
            "manager": manager,
            "admin": admin_user,
        },
        "campaign": campaign,
        "item": review_items[0],
        "task": task,
        "asset": asset,
        "token": token,
        "subscription": subscription,
        "delivery": delivery,
        "template_version": campaign.template_version,
    }


def _pk_for(name: str, world) -> object:
    if name.startswith(("review:decide", "review:skip")):
        return world["task"].pk
    if name == "review:send_back":
        return world["item"].pk
    if name.startswith(("catalogue:schedule", "catalogue:delivery")):
        return world["campaign"].pk
    if name in ("catalogue:rendition_download", "catalogue:export", "catalogue:export_download"):
        return NO_SUCH_OBJECT  # no rendition is made here: the refusals are what is checked
    if name.startswith("catalogue:"):
        return world["asset"].pk
    if name == "token_revoke":
        return world["token"].pk
    if name.startswith("webhook_"):
        return world["subscription"].pk
    if name == "reports:version_activate":
        return world["template_version"].pk
    return world["campaign"].pk


def _admin_object_id(name: str) -> str:
    short = name.removeprefix("admin:")
    for suffix in ("_change", "_delete", "_history"):
        model = _admin_model(short.removesuffix(suffix)) if short.endswith(suffix) else None
        if model is not None and model._meta.managed:
            obj = model._default_manager.order_by("pk").first()
            return str(obj.pk) if obj is not None else "0"
    return "0"


def url_for(name: str, pattern: URLPattern, world) -> str:
    if name == ADMIN_CATCH_ALL:
        return "/admin/no-such-page/"
    if "/" in name:  # an unnamed route: the admin's old change URL
        return "/" + name.replace("<path:object_id>", "0")
    converters = set(pattern.pattern.converters) | set(
        re.findall(r"\(\?P<(\w+)>", str(pattern.pattern))
    )
    values = {
        "pk": _pk_for(name, world),
        "campaign_id": world["campaign"].pk,
        "item_id": world["asset"].item_id,
        "task_id": world["task"].pk,
        "subscription_id": world["subscription"].pk,
        "delivery_id": world["delivery"].pk,
        "delivery_pk": world["delivery"].pk,
        "template_id": world["template_version"].template_id,
        "name": "products.csv",
        "path": world["asset"].image.name,
        "action": "pause",
        "kind": "template",
        "queue_index": 0,
        "scheduler_index": 0,
        "connection_index": 0,
        "job_id": "no-such-job",
        "result_id": "no-such-result",
        "key": "no-such-worker",
        "scheduler_name": "no-such-scheduler",
        "cron_job_name": "no-such-cron",
        "token": "no-such-token",
        "object_id": _admin_object_id(name),
        "content_type_id": 1,
        "id": world["users"]["creative"].pk,
        "slot_pk": NO_SUCH_OBJECT,
        "export_id": NO_SUCH_OBJECT,
        "channel": "web-thumbnail",
        "app_label": "generation",
    }
    unknown = sorted(converters - set(values))
    assert not unknown, f"{name}: say in url_for what to fill {unknown} with"
    kwargs = {key: values[key] for key in converters}
    if name == "admin:app_list":
        kwargs = {"app_label": "generation"}
    if name == "admin:view_on_site":
        kwargs = {"content_type_id": 1, "object_id": "0"}
    return reverse(name, kwargs=kwargs)


def test_every_route_answers_every_persona_as_the_table_says(world):
    clients = {persona: Client() for persona in PERSONAS}
    for persona, client in clients.items():
        if persona != "anonymous":
            client.force_login(world["users"][persona])
    failures: list[str] = []
    lines = []
    for name, pattern in sorted(routes().items()):
        if name in NOT_REQUESTED or _rq_placeholder(name):
            continue
        url = url_for(name, pattern, world)
        got: dict[str, list[str]] = {"GET": [], "POST": []}
        rule = expected(name)
        for index, persona in enumerate(PERSONAS):
            for method in ("GET", "POST"):
                if rule is not None and rule[method == "POST"].split()[index] == "*":
                    got[method].append("*")
                    continue
                status = _request(clients[persona], method, url, failures, f"{name} {persona}")
                got[method].append(status)
        shown = (" ".join(got["GET"]), " ".join(got["POST"]))
        lines.append(f'    "{name}": ("{shown[0]}", "{shown[1]}"),')
        if rule is not None and tuple(rule) != shown:
            failures.append(f"{name} ({url}): expected {rule}, got {shown}")
    dump = os.environ.get("STUDIO_ACCESS_TABLE_DUMP")
    if dump:
        with open(dump, "w") as handle:
            handle.write("\n".join(lines) + "\n")
    assert not failures, "\n".join(failures)


def _request(client: Client, method: str, url: str, failures: list[str], who: str) -> str:
    """One request in a savepoint that is rolled back: a POST that changes an object (cancel
    a campaign, revoke a token) leaves it as it was for the next persona."""
    try:
        with transaction.atomic():
            response = client.get(url) if method == "GET" else client.post(url)
            transaction.set_rollback(True)
    except Exception as exc:  # noqa: BLE001 - a 500: name the route, go on with the others
        failures.append(f"{who} {method} {url} raised {exc!r}")
        return "500"
    if (
        who.endswith(" anonymous")
        and response.status_code == 302
        and not who.startswith(
            "admin:logout "  # to the admin index, which sends anonymous on to its login
        )
    ):
        location = response["Location"]
        if not location.startswith(LOGIN_PREFIXES):
            failures.append(f"{who} {method} {url}: sent to {location}, not a login page")
    return str(response.status_code)
