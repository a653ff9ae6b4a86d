"""Property: whatever mix of rows a file holds, every line is loaded, quarantined or a duplicate."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows

CONFIG = load_config(None)
LEAD = st.sampled_from(["L1", "L2", "L3", "", "  "])
STAGE = st.sampled_from(["New Lead", "mql", " SALES  qualified", "Closed Won", "Disqualified", "Discovery Call", ""])
WHEN = st.sampled_from(["2024-01-01", "2024-01-01 10:00:00", "2024-01-02T10:00:00Z", "2024-02-30", "31/01/2024", "2099-01-01", "1980-05-05", ""])
REASON = st.sampled_from(["", "Budget", "no timeline", 'has "quotes", and commas'])
ROW = st.tuples(LEAD, STAGE, WHEN, REASON, st.sampled_from(["inbound", "referral"]))


UNDATED = ("", "2024-02-30", "31/01/2024")  # empty, impossible, not ISO 8601: no date at all


def _expected_problem(lead: str, stage: str, when: str) -> bool:
    bad_lead = not lead.strip()
    bad_time = when in ("", "2024-02-30", "31/01/2024", "2099-01-01", "1980-05-05")
    bad_stage = stage.strip() in ("", "Discovery Call")
    return bad_lead or bad_time or bad_stage


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ROW, min_size=1, max_size=25), st.lists(st.booleans(), min_size=0, max_size=3))
def test_every_line_is_accounted_for(data, wrong_count_flags):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["lead_id", "stage", "entered_at", "reason", "channel"])
    for r in data:
        writer.writerow(r)
    text = buf.getvalue()
    lines = text.splitlines()
    # A few rows with the wrong field count, inserted at the end so line numbers stay simple.
    extra = ["L9,mql,2024-01-01,,inbound,EXTRA" if flag else "L9,mql" for flag in wrong_count_flags]
    text = "\n".join(lines + extra) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "e.csv"
        src.write_text(text)
        db = Path(tmp) / "wh.duckdb"
        if all(r[0].strip() and r[2] in UNDATED for r in data):  # no row could be dated: refused, nothing loaded
            with pytest.raises(UserError, match="has no usable date"):
                load_files(db, [src], CONFIG, now=NOW)
            assert not db.exists()
            return
        f = load_files(db, [src], CONFIG, now=NOW).files[0]
        n = len(data) + len(extra)
        assert f.rows_read == n
        assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
        loaded = {r[0] for r in rows(db, "select source_line from raw_events")}
        quarantined = {r[0] for r in rows(db, "select line from quarantine")}
        assert not loaded & quarantined
        expected_bad = {i + 2 for i, r in enumerate(data) if _expected_problem(r[0], r[1], r[2])}
        expected_bad |= {len(data) + 2 + i for i in range(len(extra))}
        assert quarantined == expected_bad
        # Each line not loaded and not quarantined repeats a loaded row exactly (after trimming).
        def key(r):
            return tuple(v.strip() for v in r)
        kept = {key(data[line - 2]) for line in loaded}
        for i, r in enumerate(data):
            line = i + 2
            if line not in loaded and line not in quarantined:
                assert key(r) in kept
        assert len(loaded) == len({key(data[i]) for i in range(len(data)) if i + 2 not in quarantined})
