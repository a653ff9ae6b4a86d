"""Sending a written weekly review (docs/report.md, Delivery): by email over SMTP and to a chat's
incoming webhook. Secrets come from the environment, never the command line; a failed send is one
sentence (a UserError) and the caller keeps the file it wrote.

Environment: FUNNELBOARD_SMTP_USER and FUNNELBOARD_SMTP_PASSWORD (login, when both are set),
FUNNELBOARD_SMTP_STARTTLS (1: upgrade the connection with STARTTLS; default 0),
FUNNELBOARD_SMTP_FROM (the sender; default funnelboard@<the SMTP host>), FUNNELBOARD_WEBHOOK_URL
(the webhook's address, which carries its own secret). A secret may come from a file instead:
FUNNELBOARD_SMTP_PASSWORD_FILE, FUNNELBOARD_WEBHOOK_URL_FILE (its first line; e.g. a systemd
credential or a file only the service user reads).
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr

from funnelboard.core.errors import UserError

TIMEOUT = 30.0  # seconds for a connection or a request


@dataclass(frozen=True)
class Review:
    """What a delivery carries: a subject, plain lines for chat and the email's text part, the HTML
    pack, its file name and the dashboard address of the same view."""

    subject: str
    lines: tuple[str, ...]
    html: str
    filename: str
    link: str


def secret(env, name: str) -> str | None:
    """A secret from the environment, or from the file $<name>_FILE names (its first line)."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().strip() or None
    except OSError as exc:
        raise UserError(f"cannot read {name}_FILE '{path}': {exc.strerror or exc}.") from None


def smtp_address(text: str) -> tuple[str, int]:
    """HOST or HOST:PORT (default port 25); else a one-sentence error."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "25")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--smtp '{text}' is not HOST or HOST:PORT.")
    return host, int(port)


def send_email(review: Review, recipients: tuple[str, ...], smtp: str, env: dict | None = None) -> None:
    """The review as an email: the lines as text, the HTML as the alternative body and as an attachment."""
    env = os.environ if env is None else env
    for address in recipients:
        if "@" not in address or any(c in address for c in "\r\n,; "):
            raise UserError(f"--email '{address}' is not one email address.")
    host, port = smtp_address(smtp)
    message = EmailMessage()
    message["Subject"] = review.subject
    message["From"] = env.get("FUNNELBOARD_SMTP_FROM") or formataddr(("funnelboard", f"funnelboard@{host}"))
    message["To"] = ", ".join(recipients)
    message.set_content("\n".join((*review.lines, "", f"Open it in the dashboard: {review.link}")))
    message.add_alternative(review.html, subtype="html")
    message.add_attachment(review.html.encode("utf-8"), maintype="text", subtype="html", filename=review.filename)
    user, password = env.get("FUNNELBOARD_SMTP_USER"), secret(env, "FUNNELBOARD_SMTP_PASSWORD")
    try:
        with smtplib.SMTP(host, port, timeout=TIMEOUT) as client:
            if env.get("FUNNELBOARD_SMTP_STARTTLS", "0") == "1":
                client.starttls(context=ssl.create_default_context())
            if user and password:
                client.login(user, password)
            client.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise UserError(f"the SMTP server {host}:{port} refused the login of FUNNELBOARD_SMTP_USER; the review was not sent.") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise UserError(f"could not send the review through {host}:{port} ({_reason(exc)}); it was not sent.") from None


def chat_payload(review: Review) -> dict:
    """One message both Slack's and Microsoft Teams' incoming webhooks take: `text` in their markdown."""
    body = "\n".join(f"• {line}" for line in review.lines)
    return {"text": f"*{review.subject}*\n{body}\n<{review.link}|Open the review in the dashboard>"}


def post_webhook(review: Review, url: str | None, env: dict | None = None) -> None:
    """POST the chat message to an incoming webhook (the address from FUNNELBOARD_WEBHOOK_URL when not given)."""
    env = os.environ if env is None else env
    url = url or secret(env, "FUNNELBOARD_WEBHOOK_URL")
    if not url:
        raise UserError("--webhook needs an address: set FUNNELBOARD_WEBHOOK_URL (it holds the hook's secret, so not on the command line).")
    if not url.startswith(("https://", "http://")):
        raise UserError("the webhook address is not an http(s) URL.")
    request = urllib.request.Request(url, data=json.dumps(chat_payload(review)).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    where = url.split("/")[2]  # the host only: the path of a webhook is its secret
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise UserError(f"the webhook at {where} answered {exc.code}; the review was not posted.") from None
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(f"could not reach the webhook at {where} ({_reason(exc)}); the review was not posted.") from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, socket.timeout):
        return "timed out"
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0][:120]
