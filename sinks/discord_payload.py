"""Discord execute-webhook payloads within Discord's documented limits (pure; unit-tested).

Limits (discord.com/developers/docs/resources/message#embed-object-embed-limits and execute-webhook):
content 2000 chars; at most 10 embeds; title 256; description 4096; at most 25 fields; field name 256,
value 1024; footer text 2048; author name 256; and 6000 chars over all embeds' title, description, field
names and values, footer text and author name together. Text over a limit is cut at a word boundary with
an ellipsis, and what no longer fits the total is dropped field by field — never rejected for size.
"""

from __future__ import annotations

from typing import Any

from crownstream.schemas.deliveries import DeliveryRequest

CONTENT_MAX = 2000
EMBEDS_MAX = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
TOTAL_MAX = 6000
URL_MAX = 2048  # not a documented embed limit; longer URLs are simply left out

ELLIPSIS = "…"

COLOURS = {  # by the notification type's family
    "match": 0x3B5BDB,
    "ranking": 0x7048E8,
    "standings": 0x7048E8,
    "tournament": 0x0CA678,
    "payment": 0xF59F00,
    "payout": 0xF59F00,
    "invite": 0x1098AD,
    "roster": 0x1098AD,
}
DEFAULT_COLOUR = 0x495057


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space > limit * 0.6:  # cut at a word boundary unless that loses too much
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def embed_length(embed: dict[str, Any]) -> int:
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
        + len(embed.get("footer", {}).get("text", ""))
        + len(embed.get("author", {}).get("name", ""))
    )


def fit(payload: dict[str, Any]) -> dict[str, Any]:
    """Make any payload respect every limit (the total by trimming later embeds' fields, then descriptions)."""
    out = dict(payload)
    if "content" in out:
        out["content"] = truncate(out["content"], CONTENT_MAX)
    embeds = []
    for embed in (payload.get("embeds") or [])[:EMBEDS_MAX]:
        e = dict(embed)
        if "title" in e:
            e["title"] = truncate(e["title"], TITLE_MAX)
        if "description" in e:
            e["description"] = truncate(e["description"], DESCRIPTION_MAX)
        if "url" in e and len(e["url"]) > URL_MAX:
            del e["url"]
        if "footer" in e:
            e["footer"] = {**e["footer"], "text": truncate(e["footer"].get("text", ""), FOOTER_MAX)}
        if "author" in e:
            e["author"] = {**e["author"], "name": truncate(e["author"].get("name", ""), AUTHOR_MAX)}
        e["fields"] = [
            {
                **f,
                "name": truncate(f["name"], FIELD_NAME_MAX) or "\u200b",
                "value": truncate(f["value"], FIELD_VALUE_MAX) or "\u200b",
            }
            for f in (e.get("fields") or [])[:FIELDS_MAX]
        ]
        if not e["fields"]:
            del e["fields"]
        embeds.append(e)
    # The 6000 total: drop fields from the last embed backwards, then whole trailing embeds, then shorten the
    # first description.
    while embeds and sum(map(embed_length, embeds)) > TOTAL_MAX:
        last = embeds[-1]
        if last.get("fields"):
            last["fields"] = last["fields"][:-1]
            if not last["fields"]:
                del last["fields"]
        elif len(embeds) > 1:
            embeds.pop()
        else:
            excess = embed_length(last) - TOTAL_MAX
            last["description"] = truncate(
                last.get("description", ""), max(0, len(last.get("description", "")) - excess)
            )
            if embed_length(last) > TOTAL_MAX:
                last["title"] = truncate(
                    last.get("title", ""), max(0, TOTAL_MAX - embed_length(last) + len(last.get("title", "")))
                )
    if embeds or "embeds" in out:
        out["embeds"] = embeds
    return out


def _colour(notification_type: str) -> int:
    return COLOURS.get(notification_type.split(".", 1)[0], DEFAULT_COLOUR)


def build_payload(request: DeliveryRequest) -> dict[str, Any]:
    """Rich embed(s) for a request: one for a single notification; for a digest, a header embed plus one per
    item while they fit the embed count."""
    base: dict[str, Any] = {
        "title": request.title,
        "description": request.body,
        "color": _colour(request.notification_type),
        "timestamp": request.created_at.isoformat(),
        "footer": {"text": f"Crownstream · {request.notification_type}"},
    }
    if request.url:
        base["url"] = request.url
    fields = [
        {"name": k.replace("_", " ").capitalize(), "value": str(v), "inline": True}
        for k, v in request.data.items()
        if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    ]
    if fields:
        base["fields"] = fields
    embeds = [base]
    for item in request.items[: EMBEDS_MAX - 1]:
        e: dict[str, Any] = {
            "title": item.title,
            "description": item.body,
            "color": _colour(item.notification_type),
            "timestamp": item.occurred_at.isoformat(),
        }
        if item.url:
            e["url"] = item.url
        embeds.append(e)
    if len(request.items) > EMBEDS_MAX - 1:
        base["footer"] = {"text": f"Crownstream · {len(request.items) - (EMBEDS_MAX - 1)} more in the app"}
    for e in embeds:  # Discord rejects empty strings
        if not e.get("description"):
            e.pop("description", None)
    return fit({"embeds": embeds, "allowed_mentions": {"parse": []}})
