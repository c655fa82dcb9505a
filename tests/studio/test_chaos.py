"""The failure drill (bench/chaos.py), small: real workers killed, Redis flushed, PostgreSQL
restarted, and every item still ends once, with nothing left over and no decision lost.

It runs on its own embedded PostgreSQL and Redis (a throwaway STUDIO_VAR_DIR), never on the
servers the rest of the suite uses, so restarting PostgreSQL is safe here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_a_small_campaign_comes_home_through_kills_a_flushed_redis_and_a_postgres_restart(
    tmp_path_factory,
):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "STUDIO_EMBEDDED"}
    }
    models = tmp_path_factory.getbasetemp() / "chaos-models"
    options = {
        "--items": 8,
        "--gen-workers": 1,
        "--quality-workers": 1,
        "--kills": 2,
        "--lease": 15,
        "--quality-timeout": 10,
        "--grace": 5,
        "--reconcile-every": 2,
        "--seconds": 85,
        "--models-dir": models,
    }
    result = subprocess.run(
        [
            sys.executable,
            "bench/chaos.py",
            *[str(part) for pair in options.items() for part in pair],
            "--json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    output = result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("FIGURES ")]
    assert lines, output
    figures = json.loads(lines[-1].removeprefix("FIGURES "))

    assert len(figures["faults"]) == 4, output  # two kills, FLUSHALL, PostgreSQL restart
    assert figures["items_terminal"] == figures["items"] == 8, output
    assert figures["committed_twice"] == 0, output
    assert figures["orphan_files"] == 0, output
    assert figures["review_decisions"] > 0, output
    assert figures["review_decisions_lost"] == 0, output
    assert figures["seconds_last_fault_to_last_item"] is not None, output
    assert result.returncode == 0, output
