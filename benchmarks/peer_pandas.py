"""The peer: the pandas notebook a sales-ops analyst would write instead of funnelboard.

    python -m benchmarks.peer_pandas EVENTS.csv [--quiet]

Reads the raw CSV (one row per stage change), maps CRM labels with a copy of the default
label map, and computes the same metric set funnelboard's benchmark asks for:

* SQL rate by channel: of the leads that ever reached MQL (or a later stage: skips count),
  the share that reached SQL or later. No conversion window, no cohort period.
* Time in stage p50 / p90 by stage: completed spells only (time to the lead's next event),
  in days. No Kaplan-Meier for open spells (funnelboard adds that).
* Stage accounting: spells entered per stage, split by what the next event was: advanced
  (a later funnel stage), regressed (an earlier one), exited (an outcome, by outcome), open.
* Top disqualifier reasons: exits into an outcome by (outcome, reason), top 10 with share.
* Stalled list: open spells (the lead's last event is a funnel stage short of the win)
  older than the p90 of that stage's completed spells at the latest event, oldest first.

It is deliberately plain: no quarantine, no de-duplication, no time zones, no business days.
Prints one JSON line with timings (read, compute, total) and row counts.
"""

from __future__ import annotations

import json
import re
import sys
import time

import pandas as pd

STAGES = ["lead", "mql", "sql", "opportunity", "proposal", "won"]
OUTCOMES = ["nurture", "disqualified", "rerouted", "lost"]
LABELS = {  # copied from funnelboard's default funnel.toml [labels]
    "new": "lead", "new lead": "lead", "marketing qualified": "mql", "marketing qualified lead": "mql",
    "sales qualified": "sql", "sales qualified lead": "sql", "scoping": "opportunity",
    "discovery / scoping": "opportunity", "proposal sent": "proposal", "closed won": "won",
    "recycled": "nurture", "unqualified": "disqualified", "re-routed": "rerouted", "closed lost": "lost",
}
LABELS.update({s: s for s in STAGES + OUTCOMES})
RANK = {s: i for i, s in enumerate(STAGES)}


def compute(path: str) -> dict:
    t0 = time.perf_counter()
    df = pd.read_csv(path, parse_dates=["entered_at"])
    t_read = time.perf_counter() - t0

    # Map labels: normalise case and whitespace, then look up.
    labels = df["stage"].astype(str).str.strip().str.lower().map(lambda s: re.sub(r"\s+", " ", s))
    df["stage"] = labels.map(LABELS)
    df = df.dropna(subset=["stage"])
    df["rank"] = df["stage"].map(RANK)

    df = df.sort_values(["lead_id", "entered_at"], kind="stable")
    g = df.groupby("lead_id", sort=False)
    df["next_at"] = g["entered_at"].shift(-1)
    df["next_stage"] = g["stage"].shift(-1)
    df["next_rank"] = df["next_stage"].map(RANK)
    df["days"] = (df["next_at"] - df["entered_at"]).dt.total_seconds() / 86400

    # 1. SQL rate by channel.
    leads = df.groupby("lead_id").agg(channel=("channel", "first"), top=("rank", "max"))
    mqls = leads[leads["top"] >= RANK["mql"]]
    sql_rate = mqls.groupby("channel")["top"].agg(mqls="size", sqls=lambda s: int((s >= RANK["sql"]).sum()))
    sql_rate["rate"] = sql_rate["sqls"] / sql_rate["mqls"]

    # 2. Time in stage p50 / p90, completed spells of funnel stages.
    spells = df[df["rank"].notna()]
    completed = spells[spells["next_at"].notna()]
    tis = completed.groupby("stage")["days"].quantile([0.5, 0.9]).unstack()

    # 3. Stage accounting.
    fate = pd.Series("open", index=spells.index)
    fate[spells["next_rank"] > spells["rank"]] = "advanced"
    fate[spells["next_rank"] <= spells["rank"]] = "regressed"
    exited = spells["next_stage"].isin(OUTCOMES)
    fate[exited] = "exited_" + spells.loc[exited, "next_stage"]
    accounting = pd.crosstab(spells["stage"], fate)
    accounting["entered"] = accounting.sum(axis=1)

    # 4. Top disqualifier reasons.
    exits = df[df["stage"].isin(OUTCOMES)]
    reasons = exits.groupby(["stage", "reason"]).size().sort_values(ascending=False).head(10).to_frame("exits")
    reasons["share"] = reasons["exits"] / len(exits)

    # 5. Stalled: open spells older than their stage's p90.
    as_of = df["entered_at"].max()
    open_spells = spells[spells["next_at"].isna() & (spells["stage"] != STAGES[-1])].copy()
    open_spells["age_days"] = (as_of - open_spells["entered_at"]).dt.total_seconds() / 86400
    open_spells["p90"] = open_spells["stage"].map(tis[0.9])
    stalled = open_spells[open_spells["age_days"] > open_spells["p90"]].sort_values("age_days", ascending=False)
    stalled = stalled[["lead_id", "stage", "entered_at", "age_days", "p90", "owner", "channel"]]

    total = time.perf_counter() - t0
    return {
        "seconds": total,
        "read_seconds": t_read,
        "compute_seconds": total - t_read,
        "rows": {"sql_rate": len(sql_rate), "time_in_stage": len(tis), "stage_accounting": len(accounting),
                 "disqualifiers": len(reasons), "stalled": len(stalled)},
        "results": {"sql_rate": sql_rate, "time_in_stage": tis, "stage_accounting": accounting,
                    "disqualifiers": reasons, "stalled": stalled},
    }


if __name__ == "__main__":
    out = compute(sys.argv[1])
    if "--quiet" not in sys.argv:
        for name, frame in out["results"].items():
            print(f"== {name}", file=sys.stderr)
            print(frame.head(12).to_string(), file=sys.stderr)
    del out["results"]
    print(json.dumps(out))
