"""Sending the weekly review: a real SMTP server (aiosmtpd) and a real HTTP server on loopback receive
what `funnelboard report --email/--webhook` sends. The login and the webhook's address come from the
environment and never show in the output; a failed send is one sentence and keeps the written file."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner

from funnelboard.cli import main

SECRET = "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"reviewer", SECRET.encode())
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield inbox, f"127.0.0.1:{port}"
    finally:
        controller.stop()


def report(db, tmp_path, *args, env=None):
    return CliRunner().invoke(main, ["report", "--db", str(db), "--out", str(tmp_path / "review.html"), *args], env=env or {})


@pytest.mark.slow
def test_the_review_arrives_by_email_with_its_headline_and_the_file(db, tmp_path, smtp_server):
    inbox, address = smtp_server
    env = {"FUNNELBOARD_SMTP_USER": "reviewer", "FUNNELBOARD_SMTP_PASSWORD": SECRET, "FUNNELBOARD_SMTP_FROM": "pipeline@bpo.example"}
    out = report(db, tmp_path, "--email", "lead@bpo.example", "--email", "ops@bpo.example", "--smtp", address,
                 "--filter", "channel=referral", env=env)
    assert out.exit_code == 0, out.output
    assert SECRET not in out.output and "sent it to lead@bpo.example, ops@bpo.example" in out.output
    ((recipients, raw),) = inbox.messages
    assert recipients == ["lead@bpo.example", "ops@bpo.example"]
    message = message_from_bytes(raw, policy=default)
    written = (tmp_path / "review.html").read_text("utf-8")
    assert message["Subject"].startswith("Weekly review · week of ") and message["From"] == "pipeline@bpo.example"
    assert message["To"] == "lead@bpo.example, ops@bpo.example"
    text = message.get_body(("plain",)).get_content()
    assert "Filters: channel = referral." in text and "Reached SQL: " in text and "channel=referral" in text
    assert message.get_body(("html",)).get_content().replace("\r\n", "\n").rstrip("\n") == written.rstrip("\n")  # SMTP lines end in CRLF
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename().startswith("review-") and attachment.get_payload(decode=True).decode("utf-8") == written


@pytest.mark.slow
def test_a_refused_login_or_no_server_is_one_sentence_and_the_file_stays(db, tmp_path, smtp_server):
    _inbox, address = smtp_server
    out = report(db, tmp_path, "--email", "lead@bpo.example", "--smtp", address,
                 env={"FUNNELBOARD_SMTP_USER": "reviewer", "FUNNELBOARD_SMTP_PASSWORD": "wrong"})
    assert out.exit_code != 0 and "refused the login of FUNNELBOARD_SMTP_USER; the review was not sent." in out.output
    assert "wrong" not in out.output.replace("wrote", "") and "Traceback" not in out.output
    assert (tmp_path / "review.html").is_file()
    closed = f"127.0.0.1:{free_port()}"
    out = report(db, tmp_path, "--email", "lead@bpo.example", "--smtp", closed)
    assert out.exit_code != 0 and f"could not send the review through {closed}" in out.output and "Traceback" not in out.output
    # the password from a file (a systemd credential, a file only the service reads)
    (tmp_path / "smtp-password").write_text(SECRET + "\n", "utf-8")
    out = report(db, tmp_path, "--email", "lead@bpo.example", "--smtp", address,
                 env={"FUNNELBOARD_SMTP_USER": "reviewer", "FUNNELBOARD_SMTP_PASSWORD_FILE": str(tmp_path / "smtp-password")})
    assert out.exit_code == 0, out.output
    out = report(db, tmp_path, "--email", "lead@bpo.example", "--smtp", address,
                 env={"FUNNELBOARD_SMTP_USER": "reviewer", "FUNNELBOARD_SMTP_PASSWORD_FILE": str(tmp_path / "missing")})
    assert out.exit_code != 0 and "cannot read FUNNELBOARD_SMTP_PASSWORD_FILE" in out.output
    for args, says in ((("--email", "lead@bpo.example"), "--email needs --smtp"),
                       (("--email", "a@b.example, c@d.example", "--smtp", address), "is not one email address"),
                       (("--email", "a@b.example", "--smtp", "host:port"), "--smtp 'host:port' is not HOST or HOST:PORT")):
        out = report(db, tmp_path, *args)
        assert out.exit_code != 0 and says in out.output and len(out.output.strip().splitlines()) <= 2, out.output


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []
    status = 200

    def do_POST(self):  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.path, json.loads(body)))
        self.send_response(Hook.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    Hook.received, Hook.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_headline_is_posted_to_a_chat_webhook_whose_address_stays_secret(db, tmp_path, hook_server):
    url = hook_server + "/services/T000/B000/XXXXsecret"
    out = report(db, tmp_path, "--webhook", "--base-url", "https://funnel.bpo.example", env={"FUNNELBOARD_WEBHOOK_URL": url})
    assert out.exit_code == 0, out.output
    assert "XXXXsecret" not in out.output and "posted its headline" in out.output
    ((path, payload),) = Hook.received
    assert path == "/services/T000/B000/XXXXsecret"
    assert payload["text"].startswith("*Weekly review · week of ") and "• All leads." in payload["text"]
    assert "<https://funnel.bpo.example/?to=" in payload["text"] and "|Open the review in the dashboard>" in payload["text"]
    Hook.status = 500
    out = report(db, tmp_path, "--webhook", env={"FUNNELBOARD_WEBHOOK_URL": url})
    assert out.exit_code != 0 and "answered 500; the review was not posted." in out.output and "XXXXsecret" not in out.output
    out = report(db, tmp_path, "--webhook", env={"FUNNELBOARD_WEBHOOK_URL": ""})
    assert out.exit_code != 0 and "set FUNNELBOARD_WEBHOOK_URL" in out.output
