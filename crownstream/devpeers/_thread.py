"""An aiohttp application served from a thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from crownstream.processes import free_port


class ThreadedServer:
    host = "127.0.0.1"  # loopback only, always

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port(self.host)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.lock = threading.Lock()
        self.requests_seen = 0  # every HTTP request that reached the server, whatever its path or answer

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    @web.middleware
    async def _count(self, request: web.Request, handler):
        with self.lock:
            self.requests_seen += 1
        return await handler(request)

    def start(self):
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)

            async def serve() -> None:
                app = self.app()
                app.middlewares.insert(0, self._count)
                self._runner = web.AppRunner(app, access_log=None)
                await self._runner.setup()
                await web.TCPSite(self._runner, self.host, self.port, backlog=1024).start()

            try:
                self.loop.run_until_complete(serve())
            except BaseException as exc:  # reported to start()'s caller
                errors.append(exc)
                started.set()
                return
            started.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self._runner.cleanup())
            self.loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        started.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
