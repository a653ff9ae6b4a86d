"""Pulling from a CRM's API: `funnelboard pull salesforce|hubspot|pipedrive`.

A pull fetches what changed since the last pull and writes it as files in the shape the CRM's
source adapter already reads (etl/sources/<crm>.py), then loads those files through that
adapter: one code path from export to warehouse, and every pull can be replayed offline
(`funnelboard load <pull dir>/* --source <crm>`) and audited.

The connector contract
======================
`CONNECTORS[name]` names a module under `etl/pull/` defining `fetch(request: PullRequest) -> Pulled`
(etl/pull/base.py). The connector:

* reads its settings and secret through `etl/pull/secrets.py` (environment or a file; never argv);
* talks HTTP only through `etl/pull/http.py` `Api` (paging is the connector's; retries, throttling,
  quotas, auth errors and secret hygiene are Api's);
* fetches each record changed at or after its object's mark (`request.marks[object]`, ISO-8601
  UTC; `request.since` when there is no mark) in ascending order of change time, and for each
  changed record its whole history, so a record's events are complete in every pull (events
  already stored are exact duplicates and the loader collapses them);
* writes the files into `request.out` and returns them with the new marks: the greatest change
  time among the records it fetched completely. When a daily quota stops it (Api raises
  `QuotaReached`), it returns what it completed with `stopped` set: the next pull resumes there.

The marks are stored in the warehouse (table `pull_marks`) by the same atomic publish as the
events they cover, so a pull killed at any moment resumes from the last published mark, and
re-fetching overlapping records never duplicates an event.
"""

CONNECTORS: dict[str, str] = {
    "salesforce": "funnelboard.etl.pull.salesforce",
    "hubspot": "funnelboard.etl.pull.hubspot",
    "pipedrive": "funnelboard.etl.pull.pipedrive",
}
