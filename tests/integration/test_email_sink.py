"""The email sink against a real aiosmtpd relay and a real PostgreSQL (no broker): a recipient the relay refuses
permanently (5xx to RCPT) is suppressed — no more mail is sent to it — while one refused for now (4xx) is retried on
schedule, and a lifted address is mailed again."""

from __future__ import annotations

import asyncio

from crownstream.devpeers import SmtpPeer
from crownstream.schemas.deliveries import Contact
from crownstream.settings import Settings
from crownstream.sinks.base import Dispatcher
from crownstream.sinks.email import SUPPRESSION_CACHE_S, EmailSink
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.suppressions import lift, suppression_of
from tests.support.sinks import eventually, make_request


def to(i: int, address: str):
    return make_request(i, "email", address.split("@")[0], contact=Contact(email=address))


async def test_a_permanently_refused_recipient_is_suppressed_and_a_greylisted_one_retried(engine, database_url):
    with SmtpPeer() as relay:
        relay.refuse["gone@players.example"] = "550 5.1.1 <gone@players.example>: no such user"
        relay.refuse["grey@players.example"] = "450 4.2.0 greylisted, try again later"
        settings = Settings(
            database_url=database_url,
            smtp_port=relay.port,
            sink_max_attempts=3,
            sink_backoff_base_s=0.05,
            sink_backoff_max_s=0.1,
            sink_poll_interval_s=0.1,
        )
        dead: list = []

        async def dead_letter(claimed, outcome):
            dead.append((claimed.request.contact.email, outcome))

        sink = EmailSink(settings, Ledger(engine))
        dispatcher = Dispatcher(sink, settings, dead_letter)
        await sink.start()
        dispatcher.start()
        try:
            await sink.accept(
                [to(1, "gone@players.example"), to(2, "grey@players.example"), to(3, "ok@players.example")]
            )
            await sink.flush()
            await eventually(lambda: len(dead) == 2 and relay.count() == 1, timeout=30, what="two dead, one sent")
            by_address = dict(dead)
            gone = by_address["gone@players.example"]
            assert gone.reason_code == "address_suppressed" and gone.code == 550 and "no such user" in gone.error
            assert relay.refused["gone@players.example"] == 1  # one try: permanent
            grey = by_address["grey@players.example"]
            assert "gave up after 3 attempts" in grey.error and "greylisted" in grey.error
            assert relay.refused["grey@players.example"] == 3  # retried: temporary
            assert await suppression_of(engine, "GONE@players.example") is not None  # any case
            assert await suppression_of(engine, "grey@players.example") is None

            # Later mail to the suppressed address: dead at once, the relay never asked again.
            await sink.accept([to(4, "gone@players.example")])
            await sink.flush()
            await eventually(lambda: len(dead) == 3, timeout=30, what="the next one refused without a send")
            assert dead[2][1].reason_code == "address_suppressed" and "is suppressed since" in dead[2][1].error
            assert relay.refused["gone@players.example"] == 1

            # The mailbox exists again: lifted, it is mailed.
            relay.refuse.pop("gone@players.example")
            assert await lift(engine, "gone@players.example")
            await asyncio.sleep(SUPPRESSION_CACHE_S + 0.5)  # how stale a worker's view of them may be
            await sink.accept([to(5, "gone@players.example")])
            await sink.flush()
            await eventually(lambda: relay.count() == 2, timeout=30, what="mail to the lifted address")
        finally:
            await dispatcher.stop()
            await sink.stop()
