"""``lightctl bench console`` in its short form (200 controllers, no demo): it measures every figure
in Chromium and shows every result. The time budgets are the long form's, in BENCHMARKS.md: on a
shared two-core machine they are figures to read, not to assert; the JavaScript's size is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lightctl.bench.consoledaemon import chromium_path
from web.console_static import DIST


@pytest.mark.skipif(chromium_path() is None or not (DIST / "index.html").is_file(), reason="make console and make browser first")
def test_bench_console_short_form_measures_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lightctl", "bench", "console", "--controllers", "200", "--no-demo", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (result,) = report["results"]
    assert result["controllers"] == 200 and result["switch_results_shown"] == 200
    assert result["page_errors"] == []
    assert result["verdicts"]["js_gzip_kb"]["within"] and result["js_first_page_gzip_kb"] < result["js_gzip_kb"]
    for figure in ("first_usable_ms", "switch_max_frame_ms", "map_drawn_ms", "map_update_after_answer_ms"):
        assert result[figure] > 0, figure
