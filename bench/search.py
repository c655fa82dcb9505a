"""Benchmark: catalogue search (full text, filters, facets) at a million entries, against ILIKE.

Needs DATABASE_URL pointing at a real PostgreSQL server (no embedded server: a million rows
want a proper one). It creates its own throwaway database (studio_bench_search), runs the
migrations into it, fills the parent tables minimally and ``--rows`` catalogue entries with
SQL ``generate_series`` (200 campaigns, 50 LoRA versions, 24 months, a product vocabulary with
folded Vietnamese/Indonesian names, about 30% rejected with reason codes), builds each
search_vector in SQL with the weights and configs of catalogue.services._search_document, and
ANALYZEs. Then each query type runs through the project's own catalogue.selectors.entry_search
(per_page=48, facets on: count + page + facets) and the same question written with ILIKE over
a plain copy of the same words and filter columns (count + one page), in the same run, and a
table of p50/p95 is printed. For a query type over the goal (p95 >= 50 ms) the time per SQL
statement and the EXPLAIN ANALYZE of the slowest one are printed. The database is dropped at
the end unless --keep.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/search.py
    DATABASE_URL=... python bench/search.py --rows 20000        # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_DB = "studio_bench_search"
GOAL_P95_MS = 50.0
GOAL_RATIO = 20.0

# --- Vocabulary -----------------------------------------------------------------------------

# (product type, category)
TYPES = [
    ("sneaker", "footwear"),
    ("running shoe", "footwear"),
    ("boot", "footwear"),
    ("sandal", "footwear"),
    ("loafer", "footwear"),
    ("slipper", "footwear"),
    ("jacket", "apparel"),
    ("dress", "apparel"),
    ("shirt", "apparel"),
    ("t-shirt", "apparel"),
    ("hoodie", "apparel"),
    ("sweater", "apparel"),
    ("coat", "apparel"),
    ("jeans", "apparel"),
    ("skirt", "apparel"),
    ("shorts", "apparel"),
    ("blazer", "apparel"),
    ("backpack", "bags"),
    ("handbag", "bags"),
    ("tote bag", "bags"),
    ("wallet", "bags"),
    ("duffel bag", "bags"),
    ("watch", "accessories"),
    ("sunglasses", "accessories"),
    ("scarf", "accessories"),
    ("hat", "accessories"),
    ("cap", "accessories"),
    ("belt", "accessories"),
    ("necklace", "jewellery"),
    ("earrings", "jewellery"),
    ("bracelet", "jewellery"),
    ("ring", "jewellery"),
    ("mug", "home"),
    ("lamp", "home"),
    ("armchair", "home"),
    ("vase", "home"),
    ("cushion", "home"),
    ("throw blanket", "home"),
    ("water bottle", "sports"),
    ("yoga mat", "sports"),
]
# Folded local product names (what catalogue.text.fold makes of "Dép Sài Gòn", ...).
LOCAL = [
    ("dep sai gon", "sandal", "footwear"),
    ("ao dai lua", "dress", "apparel"),
    ("ao ba ba", "shirt", "apparel"),
    ("non la", "hat", "accessories"),
    ("tui coi", "handbag", "bags"),
    ("giay cao su", "sneaker", "footwear"),
    ("khan ran", "scarf", "accessories"),
    ("tas batik kawung", "handbag", "bags"),
    ("kain batik parang", "scarf", "accessories"),
    ("kebaya encim", "blouse", "apparel"),
    ("sarung songket", "sarong", "apparel"),
    ("dompet kulit", "wallet", "bags"),
    ("sandal jepit", "sandal", "footwear"),
    ("kemeja batik mega mendung", "shirt", "apparel"),
]
COLOURS = [
    "black",
    "white",
    "red",
    "navy",
    "blue",
    "green",
    "olive",
    "beige",
    "brown",
    "grey",
    "pink",
    "yellow",
    "orange",
    "purple",
    "teal",
    "burgundy",
    "cream",
    "charcoal",
    "silver",
    "gold",
]
# "leather" is drawn for 1.8% of rows (about 18,000 of a million: under RANK_LIMIT, ranked);
# the others share the rest.
MATERIALS = [
    "cotton",
    "linen",
    "silk",
    "wool",
    "denim",
    "suede",
    "canvas",
    "nylon",
    "polyester",
    "cashmere",
    "rattan",
    "ceramic",
    "bamboo",
    "velvet",
]
STYLES = [
    "aero",
    "classic",
    "vintage",
    "urban",
    "minimal",
    "retro",
    "sporty",
    "boho",
    "heritage",
    "nomad",
    "coastal",
    "studio",
    "alpine",
    "metro",
    "lunar",
    "terra",
]
BACKDROPS = [
    "white background",
    "marble table",
    "city street at dusk",
    "beach at sunset",
    "wooden floor",
    "pastel backdrop",
    "forest trail",
    "concrete wall",
    "tropical garden",
    "soft studio light",
]
REASONS = [
    "blur",
    "blur",
    "blur",
    "exposure",
    "exposure",
    "contrast",
    "artefacts",
    "noise",
    "blank",
    "off-prompt",
    "unwanted-concept",
    "off-style",
    "duplicate",
]
LORA_NAMES = [
    "product-photo",
    "soft-light",
    "batik-pattern",
    "flat-lay",
    "studio-white",
    "film-grain",
    "neon-night",
    "pastel-tone",
    "macro-detail",
    "outdoor-lifestyle",
]
LORA_VERSIONS = 5  # 10 names x 5 versions = 50 LoRA versions
SEASONS = ["spring", "summer", "autumn", "winter", "holiday", "back to school", "tet", "ramadan"]
THEMES = ["launch", "lookbook", "catalogue refresh", "flash sale", "marketplace", "social"]
REVIEWERS = ["automatic", "automatic", "automatic", "linh", "budi", "maria"]
PURPOSES = ["hero", "variation", "thumbnail"]
CHANNELS = ["", "instagram", "tiktok", "web"]
RIGHTS = ["internal", "campaign", "unrestricted"]
MODEL = ("sdxl-base", 1)
RARE_WORD = "zephyr"  # in the title of every 10,007th entry


def campaign_names() -> list[str]:
    return [
        f"{SEASONS[c % len(SEASONS)]} {2024 + (c // 100)} {THEMES[c % len(THEMES)]} {c + 1}"
        for c in range(200)
    ]


def lora_labels() -> tuple[list[str], list[str]]:
    labels = [f"{n}:{v}" for n in LORA_NAMES for v in range(1, LORA_VERSIONS + 1)]
    return labels, [label.split(":")[0] for label in labels]


# --- Setup ----------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def admin_connect(url: str):
    import psycopg2

    conn = psycopg2.connect(with_database(url, "postgres"))
    conn.autocommit = True
    return conn


def create_database(url: str) -> None:
    conn = admin_connect(url)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {BENCH_DB}")
    conn.close()


def drop_database(url: str) -> None:
    conn = admin_connect(url)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    conn.close()


def step(label: str, started: float) -> float:
    now = time.perf_counter()
    print(f"  {label}: {now - started:.1f} s", flush=True)
    return now


def secondary_indexes(cur, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, definition) of the indexes on tables that no constraint owns."""
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid::regclass::text = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        [list(tables)],
    )
    return cur.fetchall()


SRC_SQL = """
CREATE UNLOGGED TABLE bench_src AS
WITH r AS (
    SELECT i,
        md5('bench-item-' || i)::uuid AS id,
        md5('bench-campaign-' || (i %% 200))::uuid AS campaign_id,
        (i %% 200)::int AS c,
        (i / 200)::int AS row_index,
        bench_r(i, 1, 1000) AS r_local,
        bench_r(i, 2, %(n_types)s) AS r_type,
        bench_r(i, 3, %(n_colours)s) AS r_colour,
        bench_r(i, 4, 1000) AS r_mat,
        bench_r(i, 5, %(n_styles)s) AS r_style,
        bench_r(i, 6, %(n_loras)s) AS r_lora1,
        bench_r(i, 7, 100) AS r_lora2p,
        bench_r(i, 8, %(n_loras)s) AS r_lora2,
        bench_r(i, 9, 100) AS r_status,
        bench_r(i, 10, %(n_reasons)s) AS r_reason1,
        bench_r(i, 11, 100) AS r_reason2p,
        bench_r(i, 12, %(n_reasons)s) AS r_reason2,
        bench_r(i, 13, 730 * 86400) AS r_secs,
        bench_r(i, 14, %(n_local)s) AS r_localname,
        bench_r(i, 15, 1000) AS r_score,
        bench_r(i, 16, %(n_backdrops)s) AS r_backdrop,
        bench_r(i, 17, %(n_reviewers)s) AS r_reviewer
    FROM generate_series(0, %(rows)s - 1) AS i
), p AS (
    SELECT r.*,
        CASE WHEN r_local < 60 THEN (%(local_names)s::text[])[1 + r_localname]
             ELSE (%(styles)s::text[])[1 + r_style] || ' ' || (%(types)s::text[])[1 + r_type]
        END || CASE WHEN i %% 10007 = 3 THEN ' ' || %(rare)s || ' edition' ELSE '' END AS name,
        CASE WHEN r_local < 60 THEN (%(local_types)s::text[])[1 + r_localname]
             ELSE (%(types)s::text[])[1 + r_type] END AS ptype,
        CASE WHEN r_local < 60 THEN (%(local_cats)s::text[])[1 + r_localname]
             ELSE (%(type_cats)s::text[])[1 + r_type] END AS category,
        (%(colours)s::text[])[1 + r_colour] AS colour,
        CASE WHEN r_mat < 18 THEN 'leather'
             ELSE (%(materials)s::text[])[1 + r_mat %% %(n_materials)s] END AS material,
        (%(styles)s::text[])[1 + r_style] AS style,
        (%(backdrops)s::text[])[1 + r_backdrop] AS backdrop,
        (%(campaigns)s::text[])[1 + (i %% 200)::int] AS campaign_name,
        (%(loras)s::text[])[1 + r_lora1] AS lora1,
        (%(lora_names)s::text[])[1 + r_lora1] AS lora1_name,
        CASE WHEN r_lora2p < 30 AND (%(lora_names)s::text[])[1 + r_lora2]
                                    <> (%(lora_names)s::text[])[1 + r_lora1]
             THEN (%(loras)s::text[])[1 + r_lora2] END AS lora2,
        CASE WHEN r_lora2p < 30 AND (%(lora_names)s::text[])[1 + r_lora2]
                                    <> (%(lora_names)s::text[])[1 + r_lora1]
             THEN (%(lora_names)s::text[])[1 + r_lora2] END AS lora2_name,
        CASE WHEN r_status < 30 THEN 'rejected' WHEN r_status < 85 THEN 'approved'
             WHEN r_status < 95 THEN 'review' ELSE 'failed' END AS status,
        (%(reasons)s::text[])[1 + r_reason1] AS reason1,
        (%(reasons)s::text[])[1 + r_reason2] AS reason2,
        (%(purposes)s::text[])[1 + (i %% 3)::int] AS purpose,
        (%(channels)s::text[])[1 + (i / 7 %% 4)::int] AS channel,
        (%(rights)s::text[])[1 + (i / 11 %% 3)::int] AS rights,
        (%(reviewers)s::text[])[1 + r_reviewer] AS reviewer,
        timestamptz '2024-01-01 00:00:00+00' + r_secs * interval '1 second' AS generated_at
    FROM r
)
SELECT p.*,
    'SKU-' || lpad(c::text, 3, '0') || '-' || row_index AS sku,
    'SKU-' || lpad(c::text, 3, '0') || '-' || row_index || ' · ' || initcap(name) AS title,
    array_remove(ARRAY[lora1, lora2], NULL) AS loras,
    array_remove(ARRAY[lora1_name, lora2_name], NULL) AS lora_names,
    CASE WHEN status = 'rejected' THEN
        CASE WHEN r_reason2p < 25 AND reason2 <> reason1 THEN ARRAY[reason1, reason2]
             ELSE ARRAY[reason1] END
    ELSE '{}'::text[] END AS reason_codes,
    ARRAY[colour, material, category, purpose] AS tag_names,
    'product photo of a ' || colour || ' ' || material || ' ' || ptype || ', ' || style
        || ' style, ' || backdrop || ', high detail, sharp focus' AS prompt
FROM p
"""

ITEM_SQL = """
INSERT INTO generation_item (
    id, campaign_id, row_index, variation, channel, purpose, recipe_id, row_data, prompt,
    negative_prompt, seed, params, run, base_model_id, loras, status, attempts, worker, job_id,
    image, worker_host, cost, cost_detail, error, created_at, queued_at, generated_at,
    finished_at
)
SELECT id, campaign_id, row_index, 0, channel, purpose, %(recipe)s,
    jsonb_build_object('sku', sku, 'name', name, 'colour', colour, 'material', material,
                       'category', category),
    prompt, 'blurry, watermark', i, '{}'::jsonb, '{}'::jsonb, %(base_model)s,
    (SELECT coalesce(jsonb_agg(jsonb_build_object('name', split_part(l, ':', 1),
                     'version', split_part(l, ':', 2)::int, 'weight', 0.8)), '[]'::jsonb)
     FROM unnest(loras) AS l),
    status, 1, '', '', 'bench/' || id || '.png', '', 0.002, '{}'::jsonb, '',
    generated_at - interval '2 minutes', generated_at - interval '2 minutes', generated_at,
    generated_at + interval '1 minute'
FROM bench_src
"""

ENTRY_SQL = """
INSERT INTO catalogue_entry (
    item_id, campaign_id, status, published, verdict, reason_codes, reviewer,
    template_version_id, recipe_id, model_name, model_version, loras, lora_names, purpose,
    channel, rights, tags, tag_names, tags_added, tags_removed, title, generated_at,
    approved_at, score, cost, search_vector, updated_at
)
SELECT id, campaign_id, status, status = 'approved',
    CASE status WHEN 'failed' THEN '' ELSE status END, reason_codes,
    CASE WHEN status IN ('approved', 'rejected') THEN reviewer ELSE '' END,
    %(template_version)s, %(recipe)s, %(model_name)s, %(model_version)s, loras, lora_names,
    purpose, channel, rights, '[]'::jsonb, tag_names, '{}', '{}', title, generated_at,
    CASE WHEN status = 'approved' THEN generated_at + interval '1 day' END,
    CASE WHEN status = 'failed' THEN NULL ELSE r_score / 1000.0 END, 0.002,
    setweight(to_tsvector('english', t_a), 'A') || setweight(to_tsvector('simple', t_a), 'A')
    || setweight(to_tsvector('english', t_b), 'B') || setweight(to_tsvector('simple', t_b), 'B')
    || setweight(to_tsvector('english', t_c), 'C') || setweight(to_tsvector('simple', t_c), 'C')
    || setweight(to_tsvector('english', t_d), 'D') || setweight(to_tsvector('simple', t_d), 'D'),
    now()
FROM (
    SELECT s.*,
        lower(title || ' ' || sku || ' ' || name) AS t_a,
        lower(prompt) AS t_b,
        lower(colour || ' ' || material || ' ' || category || ' '
              || array_to_string(tag_names, ' ')) AS t_c,
        lower(campaign_name || ' ' || %(model_name)s || ' '
              || array_to_string(lora_names, ' ')) AS t_d
    FROM bench_src s
) AS t
"""

# The ILIKE side: the same words as one plain text column beside the title, the same filter
# columns and their ordinary indexes, no search vector.
PLAIN_SQL = """
CREATE TABLE bench_plain AS
SELECT id AS item_id, campaign_id, status, reason_codes, loras, lora_names, purpose, rights,
    %(model_name)s::varchar AS model_name, %(model_version)s::int AS model_version,
    generated_at, title,
    prompt || ' ' || colour || ' ' || material || ' ' || category || ' '
        || array_to_string(tag_names, ' ') || ' ' || campaign_name || ' ' || %(model_name)s
        || ' ' || array_to_string(lora_names, ' ') AS doc
FROM bench_src
"""
PLAIN_INDEXES = [
    "ALTER TABLE bench_plain ADD PRIMARY KEY (item_id)",
    "CREATE INDEX ON bench_plain (generated_at)",
    "CREATE INDEX ON bench_plain (status, generated_at)",
    "CREATE INDEX ON bench_plain USING gin (reason_codes)",
    "CREATE INDEX ON bench_plain USING gin (loras)",
]


def load(rows: int) -> None:
    from django.db import connection

    from generation.models import (
        BaseModelVersion,
        LoraVersion,
        PromptTemplate,
        PromptTemplateVersion,
        Recipe,
    )

    print(f"Loading {rows:,} entries into {BENCH_DB}:", flush=True)
    started = t0 = time.perf_counter()
    base = BaseModelVersion.objects.create(
        name=MODEL[0], version=MODEL[1], source="stabilityai/stable-diffusion-xl-base-1.0"
    )
    labels, names = lora_labels()
    LoraVersion.objects.bulk_create(
        LoraVersion(
            name=label.split(":")[0],
            version=int(label.split(":")[1]),
            file=f"loras/{label.replace(':', '-v')}.safetensors",
            sha256="0" * 64,
            is_active=label.endswith(f":{LORA_VERSIONS}"),
        )
        for label in labels
    )
    template = PromptTemplate.objects.create(name="product-photo")
    version = PromptTemplateVersion.objects.create(
        template=template,
        version=1,
        body="product photo of a {colour} {material} {name}, {backdrop}",
        placeholders=["colour", "material", "name", "backdrop"],
    )
    recipe = Recipe.objects.create(name="catalogue", base_model=base)
    campaigns = campaign_names()
    with connection.cursor() as cur:
        try:  # skip FK triggers during the load (needs a superuser; only slower without)
            cur.execute("SET session_replication_role = replica")
        except Exception:  # noqa: BLE001
            pass
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        cur.execute(
            "CREATE FUNCTION bench_r(i bigint, k bigint, n int) RETURNS int "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
            "AS $$ SELECT ((hashint8extended(i, k) & 2147483647) % n)::int $$"
        )
        cur.execute(
            """
            INSERT INTO generation_campaign (
                id, name, template_version_id, recipe_id, csv_filename, csv_columns, csv_rows,
                variations, seed_policy, base_seed, width, height, status, priority, channels,
                created_at)
            SELECT md5('bench-campaign-' || c)::uuid, (%s::text[])[1 + c], %s, %s,
                'products.csv', '["sku", "name", "colour", "material", "category"]'::jsonb,
                '[]'::jsonb, 1, 'fixed', c, 1024, 1024, 'completed', 'normal', '[]'::jsonb,
                timestamptz '2024-01-01 00:00:00+00' + c * interval '3 days'
            FROM generate_series(0, 199) AS c
            """,
            [campaigns, version.pk, recipe.pk],
        )
        indexes = secondary_indexes(cur, ("generation_item", "catalogue_entry"))
        for name, _ in indexes:
            cur.execute(f"DROP INDEX {name}")
        t0 = step("parent rows, 200 campaigns, 50 LoRA versions", t0)
        local_names, local_types, local_cats = map(list, zip(*LOCAL, strict=True))
        types, type_cats = map(list, zip(*TYPES, strict=True))
        cur.execute(
            SRC_SQL,
            {
                "rows": rows,
                "rare": RARE_WORD,
                "types": types,
                "type_cats": type_cats,
                "n_types": len(types),
                "local_names": local_names,
                "local_types": local_types,
                "local_cats": local_cats,
                "n_local": len(LOCAL),
                "colours": COLOURS,
                "n_colours": len(COLOURS),
                "materials": MATERIALS,
                "n_materials": len(MATERIALS),
                "styles": STYLES,
                "n_styles": len(STYLES),
                "backdrops": BACKDROPS,
                "n_backdrops": len(BACKDROPS),
                "reasons": REASONS,
                "n_reasons": len(REASONS),
                "loras": labels,
                "lora_names": names,
                "n_loras": len(labels),
                "campaigns": campaigns,
                "purposes": PURPOSES,
                "channels": CHANNELS,
                "rights": RIGHTS,
                "reviewers": REVIEWERS,
                "n_reviewers": len(REVIEWERS),
            },
        )
        t0 = step("source rows (generate_series)", t0)
        cur.execute(ITEM_SQL, {"recipe": recipe.pk, "base_model": base.pk})
        t0 = step("generation_item", t0)
        model = {"model_name": MODEL[0], "model_version": MODEL[1]}
        cur.execute(ENTRY_SQL, {"template_version": version.pk, "recipe": recipe.pk, **model})
        t0 = step("catalogue_entry with search_vector", t0)
        for _, definition in indexes:
            cur.execute(definition)
        t0 = step(f"{len(indexes)} indexes rebuilt (GIN search, arrays, btree)", t0)
        cur.execute(PLAIN_SQL, model)
        for sql in PLAIN_INDEXES:
            cur.execute(sql)
        cur.execute("DROP TABLE bench_src")
        cur.execute("SET session_replication_role = origin")
        t0 = step("plain copy for ILIKE", t0)
        for table in ("generation_campaign", "generation_item", "catalogue_entry", "bench_plain"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        t0 = step("VACUUM ANALYZE", t0)
        cur.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('catalogue_entry')), "
            "pg_size_pretty(pg_relation_size('entry_search_gin'))"
        )
        size, gin = cur.fetchone()
    print(f"  total {time.perf_counter() - started:.1f} s; catalogue_entry {size} (GIN {gin})")


# --- Measurement ----------------------------------------------------------------------------

LEATHER_NOTE = "about 1.8% of rows: under RANK_LIMIT at 1M, so ranked"


def query_types(month: date):
    from catalogue.selectors import SearchFilters

    def ilike(word: str) -> tuple[str, list]:
        return "(title ILIKE %s OR doc ILIKE %s)", [f"%{word}%", f"%{word}%"]

    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    neg_where = "(title ILIKE %s OR doc ILIKE %s) AND NOT (title ILIKE %s OR doc ILIKE %s)"
    lora_label = f"{LORA_NAMES[1]}:3"
    return [
        # (label, entry_search kwargs, facets only, ILIKE where, params, ILIKE offset)
        ("rare term", {"query": RARE_WORD}, False, *ilike(RARE_WORD), 0),
        ("common term, ranked", {"query": "leather"}, False, *ilike("leather"), 0),
        ("common term > RANK_LIMIT", {"query": "black"}, False, *ilike("black"), 0),
        ("phrase", {"query": '"ao dai lua"'}, False, *ilike("ao dai lua"), 0),
        (
            "negation",
            {"query": "sneaker -white"},
            False,
            neg_where,
            ["%sneaker%", "%sneaker%", "%white%", "%white%"],
            0,
        ),
        ("facet counts for a query", {"query": "batik"}, True, *ilike("batik"), None),
        (
            "LoRA version + month",
            {"filters": SearchFilters(lora_name=LORA_NAMES[1], lora_version=3, month=month)},
            False,
            "loras @> %s AND generated_at >= %s AND generated_at < %s",
            [[lora_label], month, nxt],
            0,
        ),
        (
            "rejected + blur",
            {"filters": SearchFilters(statuses=("rejected",), reason="blur")},
            False,
            "status = 'rejected' AND reason_codes @> %s",
            [["blur"]],
            0,
        ),
        (
            "deep page (1000), common term",
            {"query": "black", "page": 1000},
            False,
            *ilike("black"),
            47952,
        ),
    ]


ILIKE_FACETS = [
    f"SELECT {columns}, count(*) AS n FROM bench_plain{extra} WHERE {{w}} GROUP BY {columns} "
    f"ORDER BY {order}"
    for columns, extra, order in [
        ("status", "", "n DESC"),
        ("v", ", unnest(reason_codes) v", "n DESC"),
        ("v", ", unnest(loras) v", "n DESC"),
        ("purpose", "", "n DESC"),
        ("rights", "", "n DESC"),
        ("campaign_id", "", "n DESC"),
        ("model_name, model_version", "", "n DESC"),
        ("date_trunc('month', generated_at)", "", "1 DESC"),
    ]
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered), p95


def label_sql(sql: str) -> str:
    checks = [
        ("WITH m AS MATERIALIZED", "one pass: total, facets, page ids"),
        ("ts_rank", "ranked page ids"),
        ("work_mem", "SET LOCAL work_mem"),
        ('FROM "generation_campaign"', "campaign names"),
        ('"__count"', "count"),
        ('LEFT OUTER JOIN "catalogue_asset"', "the page's rows"),
    ]
    for needle, label in checks:
        if needle in sql:
            return label
    return sql.split()[0].lower()


def measure(reps: int, warmup: int) -> list[dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalogue.selectors import entries_filtered, entry_facets, entry_search

    results = []
    month = date(2025, 6, 1)
    for label, kwargs, facets_only, where, params, offset in query_types(month):

        def project(kwargs=kwargs, facets_only=facets_only):
            if facets_only:
                entry_facets(entries_filtered(query=kwargs["query"]))
                return None
            return entry_search(**kwargs, per_page=48, facets=True)

        def plain(where=where, params=params, offset=offset):
            with connection.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM bench_plain WHERE {where}", params)
                cur.fetchone()
                if offset is None:  # the facets, as the project counts them
                    for sql in ILIKE_FACETS:
                        cur.execute(sql.format(w=where), params)
                        cur.fetchall()
                else:
                    cur.execute(
                        f"SELECT item_id, title, generated_at FROM bench_plain WHERE {where} "
                        "ORDER BY generated_at DESC, item_id DESC LIMIT 48 OFFSET %s",
                        [*params, offset],
                    )
                    cur.fetchall()

        def timed(fn) -> list[float]:
            for _ in range(warmup):
                fn()
            out = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1000)
            return out

        result = project()
        fts = timed(project)
        ilike = timed(plain)
        row = {
            "label": label,
            "total": result.total if result else None,
            "ranked": result.ranked if result else None,
            "fts": percentiles(fts),
            "ilike": percentiles(ilike),
        }
        if row["fts"][1] >= GOAL_P95_MS:
            with CaptureQueriesContext(connection) as ctx:
                project()
            parts = sorted(
                ((float(q["time"]) * 1000, label_sql(q["sql"]), q["sql"]) for q in ctx),
                reverse=True,
            )
            row["parts"] = parts
            with connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + parts[0][2])
                row["explain"] = [line for (line,) in cur.fetchall()]
        results.append(row)
        print(f"  measured {label}", flush=True)
    return results


def report(results: list[dict], rows: int, reps: int) -> None:
    print()
    print(
        f"{rows:,} entries, {reps} repetitions each after warm-up; project = entry_search "
        "(count + page of 48 + facets), ILIKE = count + page (facet row: count + facets)"
    )
    head = (
        f"{'query type':<32} {'matches':>8} {'ranked':>6} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'ILIKE p50':>10} {'ILIKE p95':>10} {'ratio p50':>9}  goal"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        (p50, p95), (i50, i95) = r["fts"], r["ilike"]
        ratio = i50 / p50 if p50 else float("inf")
        ok = p95 < GOAL_P95_MS and ratio >= GOAL_RATIO
        matches = "" if r["total"] is None else f"{r['total']:,}"
        ranked = "" if r["ranked"] is None else ("yes" if r["ranked"] else "no")
        print(
            f"{r['label']:<32} {matches:>8} {ranked:>6} {p50:>8.1f} {p95:>8.1f} "
            f"{i50:>10.1f} {i95:>10.1f} {ratio:>8.1f}x  {'ok' if ok else 'MISSED'}"
        )
    for r in results:
        if "parts" not in r:
            continue
        print(f"\n{r['label']}: p95 {r['fts'][1]:.1f} ms; statements, slowest first:")
        for ms, label, _ in r["parts"][:6]:
            print(f"  {ms:8.1f} ms  {label}")
        print(f"  EXPLAIN ANALYZE of the slowest ({r['parts'][0][1]}):")
        for line in r["explain"][:40]:
            print("    " + line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help=f"keep {BENCH_DB} afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help=f"measure an existing (--keep) {BENCH_DB}, no load"
    )
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL: required (a PostgreSQL server; this creates its own database)")
    os.environ["DATABASE_URL"] = with_database(url, BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")  # never contacted

    if not args.reuse:
        create_database(url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        if not args.reuse:
            t = time.perf_counter()
            call_command("migrate", verbosity=0)
            print(f"migrations: {time.perf_counter() - t:.1f} s")
            load(args.rows)
        print("Measuring:", flush=True)
        results = measure(args.reps, args.warmup)
        report(results, args.rows, args.reps)
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(url)
            print(f"\ndropped {BENCH_DB}")


if __name__ == "__main__":
    main()
