"""Notice + user + channel -> the ``DeliveryRequest`` the sinks carry out (schemas/deliveries.py).

Everything in a request comes from the notice, the user's contact and fixed ids: no clock, no randomness,
so a replayed event yields a byte-identical request with the same dedup key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from crownstream.notifications.catalog import CATALOG, Notice
from crownstream.schemas.deliveries import Contact, DeliveryRequest, DigestItem, dedup_key

DIGEST_TYPE = "digest"


def link(base: str, path: str | None) -> str | None:
    if path is None:
        return None
    return base.rstrip("/") + path if base else path


def single_request(
    notice: Notice, user_id: str, channel: str, contact: Contact, link_base: str = ""
) -> DeliveryRequest:
    return DeliveryRequest(
        dedup_key=dedup_key(notice.source_event_id, user_id, channel, notice.notification_type),
        channel=channel,
        kind="single",
        notification_type=notice.notification_type,
        user_id=user_id,
        source_event_id=notice.source_event_id,
        tournament_id=notice.tournament_id,
        critical=CATALOG[notice.notification_type].critical,
        created_at=notice.created_at,
        title=notice.title,
        body=notice.body,
        url=link(link_base, notice.path),
        data=notice.data,
        contact=contact,
    )


def digest_item(notice: Notice, link_base: str = "") -> dict[str, Any]:
    return DigestItem(
        notification_type=notice.notification_type,
        source_event_id=notice.source_event_id,
        occurred_at=notice.created_at,
        title=notice.title,
        body=notice.body,
        url=link(link_base, notice.path),
    ).model_dump(mode="json")


def digest_id(user_id: str, day: str) -> str:
    return f"digest:{user_id}:{day}"


def digest_request(
    user_id: str, channel: str, day: str, at: datetime, items: list[dict[str, Any]], contact: Contact
) -> DeliveryRequest:
    """One digest per user, channel and local day: its id is the day, so a re-release is the same request."""
    source = digest_id(user_id, day)
    n = len(items)
    return DeliveryRequest(
        dedup_key=dedup_key(source, user_id, channel, DIGEST_TYPE),
        channel=channel,
        kind="digest",
        notification_type=DIGEST_TYPE,
        user_id=user_id,
        source_event_id=source,
        created_at=at,
        title=f"Your daily digest: {n} notification{'s' if n != 1 else ''}",
        body="",
        data={"day": day},
        contact=contact,
        items=[DigestItem.model_validate(i) for i in items],
    )


class RequestTemplate:
    """One notice on one channel, rendered once; per recipient only the dedup key, user id and contact change.

    Fan-out to many users (a team, a broadcast) would otherwise build and validate a full pydantic model per
    request. The template is itself built through ``single_request`` (validated) and encoded once, with
    markers where the three per-recipient values go; rendering joins the pieces around those values, so a
    rendered request is byte-identical to ``single_request(...).encode()`` (unit-tested). A marker is matched
    with its field name and quotes as the encoder writes them, which no escaped string value can contain.
    """

    __slots__ = ("_channel", "_pieces", "_source", "_type")

    _MARKERS = (("dedup_key", "@dedup@"), ("user_id", "@user@"), ("contact", "@contact@"))

    def __init__(self, notice: Notice, channel: str, link_base: str = "") -> None:
        proto = single_request(notice, "template", channel, Contact(), link_base).model_dump(mode="json")
        for field, marker in self._MARKERS:
            proto[field] = marker
        encoded = orjson.dumps(proto)
        pieces = []
        for field, marker in self._MARKERS:  # in the model's field order, as encoded
            head, _, encoded = encoded.partition(b'"%s":"%s"' % (field.encode(), marker.encode()))
            pieces.append(head + b'"%s":' % field.encode())
        pieces.append(encoded)
        self._pieces = tuple(pieces)
        self._source, self._type, self._channel = notice.source_event_id, notice.notification_type, channel

    def render(self, user_id: str, contact: dict[str, Any] | bytes) -> bytes:
        """``contact``: the Contact as a JSON-mode dict, or already encoded."""
        a, b, c, d = self._pieces
        key = dedup_key(self._source, user_id, self._channel, self._type)
        contact_json = contact if isinstance(contact, bytes) else orjson.dumps(contact)
        return b"".join((a, b'"', key.encode(), b'"', b, orjson.dumps(user_id), c, contact_json, d))
