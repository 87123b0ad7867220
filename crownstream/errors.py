"""The root of every error Crownstream raises itself: ``CrownstreamError``.

Each package that raises errors of its own keeps them in its ``errors`` module under one base of its own
(``EngineError``, ``SchemasError``, ``StreamsError``, ``StandingsError``, ``NotificationsError``, ``SinksError``,
``AgentsError``, ``WebError``), which derives from this root; ``except CrownstreamError`` catches any of them, and
nothing from a library. An error that used to be a builtin one (``ValueError``, ``ConnectionError``…) still is, so
code that caught the builtin still catches it. The errors of the top-level modules (settings) are here.
"""

from __future__ import annotations


class CrownstreamError(Exception):
    """Root of every error Crownstream raises itself (never one of a library it uses)."""


class InsecureSecrets(CrownstreamError, ValueError):
    """A worker was asked to start outside development mode with a secret unset, short or well known."""
