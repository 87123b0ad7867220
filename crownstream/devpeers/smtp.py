"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts.

It reads only the Message-ID of a message as it arrives (to count them) and parses a whole message when a test
or the demo asks for ``messages``: parsing every message with the modern email API on arrival cost the peer more
than the sink spent sending, so the benchmark measured the peer; even the standard library's header-only parser
was a tenth of the peer's time per message, so the Message-ID is found with a regular expression."""

from __future__ import annotations

import re
import threading
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from crownstream.processes import free_port


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A recipient the test scripted a refusal for: answered as a relay would (550 unknown mailbox, 450 greylisted).
        with self.peer.lock:
            refusal = self.peer.refuse.get(address.lower())
            if refusal is not None:
                self.peer.refused[address.lower()] += 1
                return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message_id = message_id_of(envelope.content)
        with self.peer.lock:
            self.peer.raw.append(envelope.content)
            self.peer.by_message_id[message_id] += 1
            self.peer.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


# The header field (folded continuation lines included) in the header section, which ends at the first empty line.
_MESSAGE_ID = re.compile(rb"^message-id:((?:.*)(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")


def message_id_of(content: bytes) -> str:
    """The Message-ID header's value, unfolded and trimmed ("" if there is none): what a header parser gives."""
    end = _END_OF_HEADERS.search(content)
    found = _MESSAGE_ID.search(content, 0, end.start() if end else len(content))
    if found is None:
        return ""
    return b" ".join(found.group(1).split()).decode("utf-8", "replace")


class SmtpPeer:
    host = "127.0.0.1"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port(self.host)
        # Reentrant: a caller that holds it (to read several fields at one instant) may still read ``messages``.
        self.lock = threading.RLock()
        self.raw: list[bytes] = []
        self._parsed: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.by_message_id: Counter = Counter()
        self.refuse: dict[
            str, str
        ] = {}  # recipient address (lower case) -> the RCPT answer, e.g. "550 5.1.1 no such user"
        self.refused: Counter = Counter()  # recipient address -> RCPTs refused
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

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message accepted so far, parsed (each once, on first ask)."""
        with self.lock:
            for data in self.raw[len(self._parsed) :]:
                self._parsed.append(message_from_bytes(data, policy=policy.default))
            return list(self._parsed)

    def count(self) -> int:
        with self.lock:
            return len(self.raw)


def serve_forever(port: int) -> None:
    """Run an SMTP peer in this (child) process until it is terminated."""
    import threading

    SmtpPeer(port).start()
    threading.Event().wait()
