"""Deleting a test's topics when it ends.

Every integration test makes its own topics (its prefix and app id are unique), a few hundred partitions with
their changelogs; never deleted, they piled up on the shared broker until it ran out of file descriptors (one
afternoon of test runs left 19,527 partition directories, and the broker shut down: "Too many open files")."""

from __future__ import annotations

import asyncio
import threading
import warnings

from aiokafka.admin import AIOKafkaAdminClient


async def delete_topics_with_prefixes(bootstrap: str, prefixes: tuple[str, ...]) -> int:
    """Delete every topic whose name starts with one of ``prefixes``; returns how many."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefixes)]
        if names:
            await admin.delete_topics(names, timeout_ms=15_000)
        return len(names)
    finally:
        await admin.close()


def delete_test_topics(bootstrap: str, prefixes: tuple[str, ...]) -> None:
    """``delete_topics_with_prefixes`` from a synchronous fixture teardown (in a thread of its own: an async
    test's event loop may still be set on this one). A failure is a warning, not the test's failure."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(delete_topics_with_prefixes(bootstrap, prefixes))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="delete-test-topics", daemon=True)
    thread.start()
    thread.join(timeout=30)
    if errors or thread.is_alive():
        warnings.warn(f"could not delete the test's topics {prefixes}: {errors or 'timed out'}", stacklevel=2)
