"""The middleware every worker response goes through, on a real aiohttp server (loopback, no broker)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crownstream.settings import Settings
from crownstream.web.errors import HttpError
from crownstream.web.inputs import read_json
from crownstream.web.middleware import DEFAULT_HEADERS, install

SETTINGS = Settings(http_max_body_bytes=2048, http_max_json_depth=4)


async def refused(request):
    if "quote" in request.query:
        raise HttpError(400, f"bad value {request.headers.get('X-Value')}")  # client bytes, as aiohttp decoded them
    raise HttpError(409, "conflict: do something else")


async def bug(request):
    raise RuntimeError("secret internals /etc/passwd")


async def echo(request):
    return web.json_response({"body": await read_json(request, SETTINGS), "id": request.match_info.get("user_id")})


async def page(request):
    return web.Response(
        text="<p>hi</p>", content_type="text/html", headers={"Content-Security-Policy": "default-src 'self'"}
    )


@pytest.fixture
async def client():
    app = web.Application(client_max_size=4096)
    install(app)
    app.router.add_get("/refused", refused)
    app.router.add_get("/bug", bug)
    app.router.add_post("/users/{user_id}/echo", echo)
    app.router.add_get("/page", page)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_errors_are_json_and_a_bug_is_a_500_without_internals(client, caplog):
    r = await client.get("/refused")
    assert r.status == 409 and await r.json() == {"error": "conflict: do something else"}
    with caplog.at_level(logging.ERROR, logger="crownstream.web.middleware"):
        r = await client.get("/bug")
    body = await r.text()
    assert r.status == 500 and "secret internals" not in body and "Traceback" not in body
    assert [rec.message for rec in caplog.records] == ["unhandled error serving GET /bug"]  # logged once
    # Header bytes that are not UTF-8 reach the view as lone surrogates; quoting them is still a clean 400.
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /refused?quote HTTP/1.1\r\nHost: x\r\nX-Value: \xff\xfe\r\nConnection: close\r\n\r\n")
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and json.loads(body)["error"] == "bad value \\udcff\\udcfe"
    r = await client.get("/nowhere")
    assert r.status == 404 and "openapi.json" in (await r.json())["error"]
    r = await client.get("/users/ada/echo")
    assert r.status == 405 and r.headers["Allow"] == "POST" and "error" in await r.json()


async def test_path_parameters_are_checked_on_every_route(client):
    assert (await client.post("/users/ada/echo", json={"a": 1})).status == 200
    for bad in ("a%00b", "a" * 129, "a%0Ab", "%7F"):
        r = await client.post(f"/users/{bad}/echo", json={"a": 1})
        assert r.status == 400 and "path parameter user_id" in (await r.json())["error"], bad


async def test_bodies(client):
    def post(data, **headers):
        return client.post(
            "/users/ada/echo",
            data=data,
            headers={"Content-Type": "application/json", **headers},
        )

    assert (await (await post(b'{"x": [1]}')).json())["body"] == {"x": [1]}
    cases = {
        b"[[[[[1]]]]]": 400,
        b"\xff\xfe": 400,
        b"{": 400,
        b"": 400,
        b"[" + b" " * 3000 + b"]": 413,  # over http_max_body_bytes
        b"[" + b" " * 5000 + b"]": 413,  # over aiohttp's client_max_size too
    }
    for data, status in cases.items():
        r = await post(data)
        assert r.status == status and (await r.json())["error"], data[:20]
    assert (await post(b"[]", **{"Content-Type": "application/json; charset=ebcdic-klingon"})).status == 415

    async def chunks():  # no Content-Length: the cap applies while reading
        for _ in range(10):
            yield b" " * 1000

    r = await client.post("/users/ada/echo", data=chunks(), headers={"Content-Type": "application/json"})
    assert r.status == 413


async def test_every_response_has_the_default_headers_and_a_page_keeps_its_own_policy(client):
    for path in ("/refused", "/bug", "/nowhere"):
        r = await client.get(path)
        for name, value in DEFAULT_HEADERS.items():
            assert r.headers[name] == value, (path, name)
    r = await client.get("/page")
    assert (
        r.headers["Content-Security-Policy"] == "default-src 'self'"
        and r.headers["X-Content-Type-Options"] == "nosniff"
    )
