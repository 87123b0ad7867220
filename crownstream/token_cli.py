"""``crownstream token mint USER_ID [--ttl SECONDS]``: a per-user bearer token, for operators and scripts.

The platform backend normally mints tokens in-process (``crownstream.web.auth.mint_user_token``, or any JWT
library: HS256 over {sub, iat, exp, aud: "crownstream"} with CROWNSTREAM_USER_TOKEN_KEY).
"""

from __future__ import annotations

import sys

import click

from crownstream.settings import get_settings


@click.group("token")
def token() -> None:
    """Per-user bearer tokens (web/auth.py)."""


@token.command("mint")
@click.argument("user_id")
@click.option(
    "--ttl",
    "ttl_s",
    type=int,
    default=3600,
    show_default=True,
    help="Lifetime in seconds (at most CROWNSTREAM_USER_TOKEN_MAX_TTL_S).",
)
def token_mint(user_id: str, ttl_s: int) -> None:
    """Print a bearer token that opens USER_ID's own preferences, feed and webhooks for --ttl seconds."""
    from crownstream.web.auth import mint_user_token

    try:
        click.echo(mint_user_token(user_id, ttl_s, get_settings()))
    except ValueError as exc:
        click.echo(f"crownstream token mint: {exc}", err=True)
        sys.exit(2)
