"""Salesforce Bulk API 2.0 query jobs through the core `Api`: create, poll, read the CSV result pages.

A job is `POST jobs/query` ({operation: query|queryAll, query, contentType CSV, columnDelimiter
COMMA, lineEnding LF}); `GET jobs/query/<id>` is polled until its state is JobComplete (Failed and
Aborted carry an errorMessage), waiting `poll` seconds, doubling up to `POLL_CAP`, at most `max_wait`
seconds in all (then the job is aborted); `GET jobs/query/<id>/results?maxRecords=&locator=` returns
CSV pages, each with its header row, the next page's `Sforce-Locator` (the string "null" after the
last) and `Sforce-NumberOfRecords`. Every request is the core Api's, so retries, 429 waits, the quota
stop, the 401/403 sentences and redaction hold for Bulk as for REST.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from funnelboard.core.errors import UserError
from funnelboard.etl.pull.http import Api

POLL_CAP = 30.0  # seconds between two polls, at most


@dataclass(frozen=True)
class BulkSettings:
    poll: float = 1.0  # seconds before the first poll; doubles up to POLL_CAP
    max_wait: float = 3600.0  # seconds a job may take before it is aborted and the pull fails
    page_size: int = 50000  # maxRecords of a results page


class BulkQuery:
    """Runs one SOQL query as a Bulk API 2.0 query job and yields its result pages as rows keyed by column."""

    def __init__(self, api: Api, version: str, settings: BulkSettings):
        self.api = api
        self.version = version
        self.settings = settings
        self.jobs: list[str] = []

    def path(self, resource: str) -> str:
        return f"/services/data/v{self.version}/{resource}"

    def pages(self, obj: str, soql: str, *, all_rows: bool = False) -> Iterator[list[dict[str, str]]]:
        job = self.api.post(self.path("jobs/query"), json={
            "operation": "queryAll" if all_rows else "query", "query": soql, "contentType": "CSV",
            "columnDelimiter": "COMMA", "lineEnding": "LF"})
        job_id = str(job.get("id") or "") if isinstance(job, dict) else ""
        if not job_id:
            raise UserError(f"Salesforce's Bulk API 2.0 answered the query job for {obj} without a job id.")
        self.jobs.append(job_id)
        self.wait(obj, job_id)
        locator = None
        while True:
            params = {"maxRecords": str(self.settings.page_size)}
            if locator:
                params["locator"] = locator
            response = self.api.request("GET", self.path(f"jobs/query/{job_id}/results"), params=params,
                                        headers={"Accept": "text/csv"}, raw=True)
            yield _rows(response.content)
            locator = (response.headers.get("Sforce-Locator") or "").strip()
            if not locator or locator == "null":
                self.delete(job_id)
                return

    def wait(self, obj: str, job_id: str) -> None:
        """Poll the job until JobComplete; one sentence naming `obj` when it failed, was aborted or took too long."""
        delay, waited = self.settings.poll, 0.0
        while True:
            info = self.api.get(self.path(f"jobs/query/{job_id}"))
            state = str(info.get("state") or "") if isinstance(info, dict) else ""
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                why = " ".join(str(info.get("errorMessage") or "no reason given").split()).rstrip(".")
                raise UserError(self.api.redact(
                    f"Salesforce's Bulk API 2.0 query job {job_id} for {obj} ended {state} ({why}): fix that, or pull "
                    "through the REST API with FUNNELBOARD_SALESFORCE_BULK=never."))
            if waited + delay > self.settings.max_wait:
                self.abort(job_id)
                raise UserError(f"Salesforce's Bulk API 2.0 query job {job_id} for {obj} was still {state or 'unfinished'} "
                                f"after {waited:,.0f} s (FUNNELBOARD_SALESFORCE_BULK_MAX_WAIT): it was aborted; raise the "
                                "wait or run the pull again later.")
            self.api.progress.note(f"  salesforce: Bulk API job for {obj} is {state or 'queued'}; polling again in {delay:.1f} s")
            self.api.sleep(delay)
            waited += delay
            delay = min(max(delay * 2, 0.0), POLL_CAP)

    def delete(self, job_id: str) -> None:
        """Delete a job whose results are all read: the org keeps a finished job and its results for
        days otherwise. Best effort: the rows are read, so a refusal changes nothing of the pull."""
        try:
            self.api.request("DELETE", self.path(f"jobs/query/{job_id}"), raw=True)
        except UserError:
            pass

    def abort(self, job_id: str) -> None:
        try:
            self.api.request("PATCH", self.path(f"jobs/query/{job_id}"), json={"state": "Aborted"})
        except UserError:
            pass  # the job ends by itself; the sentence about the wait is what matters


def _rows(content: bytes) -> list[dict[str, str]]:
    """A results page's CSV (UTF-8, a header row first) as rows keyed by column name."""
    text = content.decode("utf-8-sig")
    if not text.strip():
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    return [dict(zip(header, row)) for row in reader if row]
