"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts, parsed."""

from __future__ import annotations

import threading
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from crownstream.processes import free_port


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.peer.lock:
            self.peer.messages.append(message)
            self.peer.by_message_id[message["Message-ID"]] += 1
            self.peer.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpPeer:
    host = "127.0.0.1"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port(self.host)
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.by_message_id: Counter = Counter()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)

    def start(self) -> SmtpPeer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


def serve_forever(port: int) -> None:
    """Run an SMTP peer in this (child) process until it is terminated."""
    import threading

    SmtpPeer(port).start()
    threading.Event().wait()
