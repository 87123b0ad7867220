"""The dead-letter path: records that are not valid events are kept, with why, instead of stopping the agent.

Each DLQ record carries the original key and value byte for byte, and headers naming the error and the
record's origin, so that ``crownstream dlq replay`` can put it back on its source topic after a fix.

Except when that copy would not fit: the broker accepts a record a little over 1 MB, and the copy adds
headers, so a record just under the broker's limit would be refused by the producer (1,000,000 bytes by
default) and the agent would fail on the DLQ write itself. Then the copy keeps the head of the value (and of
an outsized key) with the original's size and SHA-256 in headers: enough to find and compare the original
at its source offset, which the headers name too. ``crownstream dlq replay`` skips such truncated copies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from crownstream.logs import redact_text
from crownstream.schemas.codec import Rejection, cap_reason

HEADER_CODE = "dlq.error.code"
HEADER_REASON = "dlq.error.reason"
HEADER_TOPIC = "dlq.source.topic"
HEADER_PARTITION = "dlq.source.partition"
HEADER_OFFSET = "dlq.source.offset"
HEADER_AGENT = "dlq.agent"
HEADER_VALUE_TRUNCATED = "dlq.value.truncated"  # "true" when the value is the original's head only
HEADER_VALUE_SIZE = "dlq.value.original_size"
HEADER_VALUE_SHA256 = "dlq.value.sha256"
HEADER_KEY_TRUNCATED = "dlq.key.truncated"
HEADER_KEY_SIZE = "dlq.key.original_size"
HEADER_KEY_SHA256 = "dlq.key.sha256"

REASON_HEADER_MAX_CHARS = 2000
# aiokafka's (and Faust's) default max_request_size: the largest record the producer sends.
PRODUCER_MAX_REQUEST_SIZE = 1_000_000
# Room for what the producer adds around a record (batch header, record framing, varints): a few hundred
# bytes at most; a generous margin keeps the arithmetic honest if the framing grows.
FRAMING_MARGIN = 16 * 1024
# A key is an id; a key longer than this is kept as its head (with size and hash) so the value keeps the room.
KEY_MAX_BYTES = 4 * 1024


def dead_letter_headers(
    rejection: Rejection, topic: str, partition: int, offset: int, agent: str
) -> list[tuple[str, bytes]]:
    return [
        (HEADER_CODE, rejection.code.encode()[:64]),
        # Capped by characters, so the header stays valid UTF-8; credentials masked as in the logs.
        (HEADER_REASON, redact_text(cap_reason(rejection.reason, REASON_HEADER_MAX_CHARS)).encode()),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
        (HEADER_AGENT, agent.encode()),
    ]


@dataclass(frozen=True, slots=True)
class DeadLetterCopy:
    """What is sent to the DLQ for one record: key, value and headers that together fit one produce request."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value) + sum(len(k) + len(v) for k, v in self.headers)


def _head(data: bytes, keep: int, truncated: str, size: str, digest: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    return data[: max(0, keep)], [
        (truncated, b"true"),
        (size, str(len(data)).encode()),
        (digest, hashlib.sha256(data).hexdigest().encode()),
    ]


def fit_dead_letter(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    max_request_size: int = PRODUCER_MAX_REQUEST_SIZE,
) -> DeadLetterCopy:
    """The DLQ copy of a record: byte for byte when it fits ``max_request_size`` with its headers; otherwise the
    head of the key and value, with each one's original size and SHA-256 in headers."""
    value = value if value is not None else b""
    headers = list(headers)
    budget = max_request_size - FRAMING_MARGIN
    if key is not None and len(key) > KEY_MAX_BYTES:
        key, extra = _head(key, KEY_MAX_BYTES, HEADER_KEY_TRUNCATED, HEADER_KEY_SIZE, HEADER_KEY_SHA256)
        headers += extra
    copy = DeadLetterCopy(key, value, headers)
    if copy.size <= budget:
        return copy
    # The value's own headers take room too: at most ~100 bytes (name lengths + a size + a 64-char hash).
    _, extra = _head(b"", 0, HEADER_VALUE_TRUNCATED, HEADER_VALUE_SIZE, HEADER_VALUE_SHA256)
    room = budget - (copy.size - len(value)) - sum(len(k) + len(v) for k, v in extra) - 32
    head, extra = _head(value, room, HEADER_VALUE_TRUNCATED, HEADER_VALUE_SIZE, HEADER_VALUE_SHA256)
    return DeadLetterCopy(key, head, headers + extra)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A DLQ record as read back by the operator commands."""

    dlq_offset: int
    code: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    agent: str
    key: bytes | None
    value: bytes | None
    # Set when the copy holds only the head of the original value (see ``fit_dead_letter``).
    original_size: int | None = None
    original_sha256: str | None = None
    key_truncated: bool = False

    @property
    def truncated(self) -> bool:
        """Only the head of the original is kept: not replayable as it is."""
        return self.original_size is not None or self.key_truncated

    @classmethod
    def from_record(cls, offset: int, key: bytes | None, value: bytes | None, headers) -> DeadLetter:
        h = {k: v.decode(errors="replace") for k, v in (headers or [])}
        return cls(
            dlq_offset=offset,
            code=h.get(HEADER_CODE, "?"),
            reason=h.get(HEADER_REASON, ""),
            source_topic=h.get(HEADER_TOPIC, ""),
            source_partition=int(h.get(HEADER_PARTITION, -1)),
            source_offset=int(h.get(HEADER_OFFSET, -1)),
            agent=h.get(HEADER_AGENT, ""),
            key=key,
            value=value,
            original_size=int(h[HEADER_VALUE_SIZE]) if h.get(HEADER_VALUE_TRUNCATED) == "true" else None,
            original_sha256=h.get(HEADER_VALUE_SHA256) if h.get(HEADER_VALUE_TRUNCATED) == "true" else None,
            key_truncated=h.get(HEADER_KEY_TRUNCATED) == "true",
        )
