"""The dead-letter path: records that are not valid events are kept, with why, instead of stopping the agent.

Each DLQ record carries the original key and value byte for byte, and headers naming the error and the
record's origin, so that ``crownstream dlq replay`` can put it back on its source topic after a fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from crownstream.schemas.codec import Rejection

HEADER_CODE = "dlq.error.code"
HEADER_REASON = "dlq.error.reason"
HEADER_TOPIC = "dlq.source.topic"
HEADER_PARTITION = "dlq.source.partition"
HEADER_OFFSET = "dlq.source.offset"
HEADER_AGENT = "dlq.agent"


def dead_letter_headers(rejection: Rejection, topic: str, partition: int, offset: int, agent: str) -> list[tuple[str, bytes]]:
    return [
        (HEADER_CODE, rejection.code.encode()),
        (HEADER_REASON, rejection.reason.encode()[:8000]),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
        (HEADER_AGENT, agent.encode()),
    ]


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

    @classmethod
    def from_record(cls, offset: int, key: bytes | None, value: bytes | None, headers) -> "DeadLetter":
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
        )
