"""One HTTP client for every connector: retries, throttling, quotas, auth errors, secret hygiene.

* 5xx answers, timeouts and dropped connections are retried with exponential backoff
  (`FUNNELBOARD_PULL_BACKOFF` seconds, doubling, at most `FUNNELBOARD_PULL_RETRIES` tries).
* 429 waits what `Retry-After` says (seconds or an HTTP date; backoff without one) and tries again;
  a wait longer than `FUNNELBOARD_PULL_MAX_WAIT` seconds, or an answer the connector's `quota`
  reads as a daily limit, raises `QuotaReached`: the pull stops cleanly and resumes later.
* 401 and 403 are one sentence naming the permission the connector says is missing; a connector that
  can log in again (`renew`) gets one chance per request to do so on a 401, and the request is retried
  with the new headers (a session that expired mid-pull).
* A secret never reaches a message: errors name the path, never the URL's query or the answer's
  text unredacted, and every text the client builds passes through `redact`.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl.pull.base import QuotaReached
from funnelboard.etl.pull.secrets import Secret

try:
    import requests
except ModuleNotFoundError:  # the [pull] extra is not installed: get_connector says so in one sentence
    requests = None


@dataclass(frozen=True)
class Policy:
    retries: int = 5
    backoff: float = 1.0
    max_wait: float = 300.0
    timeout: float = 60.0

    @classmethod
    def from_env(cls) -> Policy:
        def number(name: str, default: float) -> float:
            text = os.environ.get(name, "").strip()
            try:
                value = float(text) if text else default
            except ValueError:
                raise UserError(f"{name} must be a number of seconds (or tries), not '{text}'.") from None
            if value < 0:
                raise UserError(f"{name} must not be negative, not '{text}'.")
            return value

        return cls(
            retries=max(1, int(number("FUNNELBOARD_PULL_RETRIES", cls.retries))),
            backoff=number("FUNNELBOARD_PULL_BACKOFF", cls.backoff),
            max_wait=number("FUNNELBOARD_PULL_MAX_WAIT", cls.max_wait),
            timeout=number("FUNNELBOARD_PULL_TIMEOUT", cls.timeout),
        )


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class Api:
    """HTTP to one CRM, named in messages as users write it (`crm`: "Salesforce", "HubSpot"). `scope(status, path)` says which permission a 401/403 lacks (one sentence
    fragment); `quota(response)` returns a sentence when an answer means a long quota is used up."""

    def __init__(
        self,
        crm: str,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        secrets: Sequence[Secret] = (),
        scope: Callable[[int, str], str],
        quota: Callable[[Any], str | None] | None = None,
        progress: Progress | None = None,
        policy: Policy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session=None,
        renew: Callable[[Any], bool] | None = None,
    ):
        if requests is None:
            raise UserError("`funnelboard pull` needs the pull extra: pip install 'funnelboard[pull]' (missing: requests).")
        self.crm = crm
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = dict(headers or {})
        self.secrets = [s for s in secrets if s is not None]
        self.scope = scope
        self.quota = quota or (lambda response: None)
        self.progress = progress or Progress(enabled=False)
        self.policy = policy or Policy.from_env()
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.trust_env = False  # no proxy or .netrc from the environment: the headers given are the auth
        self.renew = renew  # renew(401 response) -> True once it set fresh auth headers; may raise one sentence
        self.requests = 0
        self.answered = 0  # requests answered below 400: a 401 after some means a session that expired, not a bad one
        self.waited = 0.0
        self.server_date: str | None = None  # the Date header of the latest answer: the server's clock

    def server_now(self) -> datetime:
        """The server's time, from the Date header of its latest answer (this machine's clock before any answer)."""
        try:
            moment = email.utils.parsedate_to_datetime(self.server_date) if self.server_date else None
        except (TypeError, ValueError):
            moment = None
        return moment.astimezone(timezone.utc) if moment and moment.tzinfo else datetime.now(timezone.utc)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            value = s.reveal()
            if value:
                text = text.replace(value, "***")
        return text

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else urljoin(self.base_url, path.lstrip("/"))

    def get(self, path: str, params: dict | None = None, **kw) -> Any:
        return self.request("GET", path, params=params, **kw)

    def post(self, path: str, json: Any = None, **kw) -> Any:
        return self.request("POST", path, json=json, **kw)

    def request(self, method: str, path: str, *, params=None, json=None, data=None, headers=None, raw: bool = False,
                accept: tuple[int, ...] = ()) -> Any:
        """The answer's JSON (or the response itself with `raw`), after retries and waits. An answer whose status is in
        `accept` (a 404 the caller expects, say) is returned as the response itself, for the caller to read (`body`)."""
        url = self.url(path)
        where = urlsplit(url).path or "/"
        failures = 0
        last = ""
        renewed = False
        while True:
            self.requests += 1
            try:
                response = self.session.request(
                    method, url, params=params, json=json, data=data, headers={**self.headers, **(headers or {})},
                    timeout=self.policy.timeout,
                )
            except requests.RequestException as exc:  # timeouts, refused or dropped connections
                last = f"{type(exc).__name__} at {where}"
                failures += 1
                if failures >= self.policy.retries:
                    raise UserError(self._gave_up(last, failures)) from None
                self._wait(self._backoff(failures), f"{type(exc).__name__}")
                continue
            status = response.status_code
            self.server_date = response.headers.get("Date") or self.server_date
            if status == 429 or status in (401, 403):
                message = self.quota(response)
                if message:
                    raise QuotaReached(self.redact(message))
            if status == 429:
                wait = retry_after(response.headers.get("Retry-After"))
                wait = self._backoff(failures + 1) if wait is None else wait
                if wait > self.policy.max_wait:
                    raise QuotaReached(
                        f"{self.crm} asks to wait {wait:,.0f} s before the next request (more than FUNNELBOARD_PULL_MAX_WAIT, "
                        f"{self.policy.max_wait:,.0f} s)."
                    )
                self._wait(wait, "HTTP 429, rate limited")
                continue
            if status == 401 and self.renew is not None and not renewed:
                renewed = True
                if self.renew(response):
                    continue
            if status in (401, 403):
                raise UserError(self.redact(f"{self.crm} refused {where} (HTTP {status}): {self.scope(status, where)}"))
            if status >= 500:
                last = f"HTTP {status} at {where}"
                failures += 1
                if failures >= self.policy.retries:
                    raise UserError(self._gave_up(last, failures)) from None
                self._wait(self._backoff(failures), f"HTTP {status}")
                continue
            if status in accept:
                return response
            if status >= 400:
                raise UserError(self.redact(f"{self.crm} answered HTTP {status} to {method} {where}: {_short(response.text)}"))
            self.answered += 1
            return response if raw else self.body(response)

    def body(self, response) -> Any:
        """An answer's JSON, or one sentence saying it is not JSON."""
        try:
            return response.json()
        except ValueError:
            where = urlsplit(response.url or "").path or "/"
            raise UserError(f"{self.crm} answered {where} with something that is not JSON (HTTP {response.status_code}).") from None

    def _backoff(self, failures: int) -> float:
        return min(self.policy.backoff * 2 ** (failures - 1), 60.0)

    def _wait(self, seconds: float, why: str) -> None:
        self.progress.note(f"  {self.crm}: {why}; waiting {seconds:.1f} s")
        self.waited += seconds
        self.sleep(seconds)

    def _gave_up(self, last: str, tries: int) -> str:
        return self.redact(
            f"{self.crm} did not answer after {tries} tries (last: {last}); nothing from this pull was loaded and the marks "
            "are unchanged: run the pull again later."
        )


def _short(text: str, limit: int = 200) -> str:
    """The first line of an error body, shortened: enough to act on, never a whole page."""
    line = " ".join((text or "").split())
    return (line[: limit - 1] + "…") if len(line) > limit else (line or "no message")
