"""The production server: waitress, with a graceful stop (docs/deploy.md).

On SIGTERM or SIGINT the server stops accepting connections (those that reached the listening
socket before the signal are still taken), lets every request already received finish and its
response be written to the last byte, closes idle keep-alive connections, and returns once no
connection is left or `drain_seconds` have passed, so the process exits normally and its atexit
handlers run (the gateway's spill directory is removed). A second signal stops waiting.

waitress's own `run()` stops its socket loop at the first SystemExit or KeyboardInterrupt: the
task threads may finish, but output still buffered for a slow reader is never written.
"""

from __future__ import annotations

import select
import signal
import socket
import threading
import time

import click
import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

from funnelboard.core.errors import UserError

DRAIN_SECONDS = 20.0  # below the 30 s Kubernetes and systemd give a process before SIGKILL


class _Wakeup(wasyncore.dispatcher):
    """The read end of a socket pair the signal handler writes to: the loop wakes at once."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        try:
            self.socket.recv(512)
        except OSError:
            pass


def run_production(wsgi_app, host: str, port: int, threads: int, *, drain_seconds: float = DRAIN_SECONDS) -> None:
    """Serve `wsgi_app` with waitress until SIGTERM or SIGINT, then drain (above) and return.

    Call from the main thread (signal handlers are installed there, and restored on return)."""
    sockets: dict = {}
    try:
        server = waitress.create_server(wsgi_app, map=sockets, host=host, port=port, threads=threads)
    except OSError as exc:
        raise UserError(f"cannot listen on {host} port {port}: {exc.strerror or exc}.") from None
    adj = server.adj
    listeners = [d for d in sockets.values() if isinstance(d, BaseWSGIServer)]
    tasks = listeners[0].task_dispatcher
    wake_read, wake_write = socket.socketpair()
    wake_write.setblocking(False)
    _Wakeup(wake_read, map=sockets)
    received: list[int] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)
        try:
            wake_write.send(b"\0")
        except OSError:
            pass  # the pair is full: the loop is awake already

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not received:
            wasyncore.loop(timeout=adj.asyncore_loop_timeout, map=sockets, use_poll=adj.asyncore_use_poll, count=1)
        _drain(sockets, listeners, received, adj, time.monotonic() + drain_seconds)
    finally:
        tasks.shutdown(timeout=1)
        _join_workers(deadline=time.monotonic() + 5)
        wasyncore.close_all(sockets)
        wake_write.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drain(sockets: dict, listeners: list, received: list[int], adj, deadline: float) -> None:
    """Stop accepting, then run the loop until every connection is done, the deadline or a second signal."""

    def loop(timeout: float) -> None:
        wasyncore.loop(timeout=timeout, map=sockets, use_poll=adj.asyncore_use_poll, count=1)

    for listener in listeners:
        _accept_waiting(listener)
        wasyncore.dispatcher.close(listener)  # the listening socket only: task threads still pull its trigger
    loop(0)  # read the requests that arrived before the signal, so they count as in flight
    busy = [c for c in _channels(sockets) if not _idle(c)]
    click.echo(f"stopping: {len(busy)} connection(s) in flight, waiting up to {max(0.0, deadline - time.monotonic()):.0f} s "
               "(a second Ctrl+C or SIGTERM stops at once)", err=True)
    while True:
        channels = _channels(sockets)
        if not channels:
            click.echo("stopped: every response was written", err=True)
            return
        if len(received) > 1 or time.monotonic() >= deadline:
            click.echo(f"stopped with {len(channels)} connection(s) still open: "
                       + ("a second signal" if len(received) > 1 else "the drain timeout"), err=True)
            return
        for channel in channels:
            if _idle(channel):
                channel.will_close = True  # closed by the loop's next pass (HTTPChannel.handle_write)
        loop(min(adj.asyncore_loop_timeout, max(0.0, deadline - time.monotonic())))


def _join_workers(deadline: float) -> None:
    """Wait until waitress's worker threads have really ended. `shutdown` returns once each has left
    its loop, but a thread's exit still drops its thread-local DuckDB cursor (warehouse/gateway.py);
    one doing so while the interpreter finalizes dies inside DuckDB's C++ frames and aborts the process."""
    for thread in threading.enumerate():
        if thread.name.startswith("waitress-"):
            thread.join(max(0.0, deadline - time.monotonic()))


def _accept_waiting(listener: BaseWSGIServer) -> None:
    """Take the connections already queued on the listening socket (bounded by its backlog)."""
    for _ in range(listener.adj.backlog):
        try:
            ready, _w, _x = select.select([listener.socket], [], [], 0)
        except (OSError, ValueError):
            return
        if not ready:
            return
        listener.handle_accept()


def _channels(sockets: dict) -> list[HTTPChannel]:
    return [d for d in list(sockets.values()) if isinstance(d, HTTPChannel)]


def _idle(channel: HTTPChannel) -> bool:
    """No request received or partly received, none running or queued, nothing left to write."""
    return not channel.requests and channel.request is None and not channel.total_outbufs_len
