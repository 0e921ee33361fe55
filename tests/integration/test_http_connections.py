"""An idle keep-alive connection stays open longer than uvicorn's 5 s default: a client or load balancer that reuses
it after a pause gets its answer. Closed under it, the request would meet a reset and no answer (a POST is not
retried for the client), as the benchmark's HTTP steps saw now and then when vegeta reused an idle connection."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from tests.local import LOCAL

UVICORN_DEFAULT_KEEP_ALIVE = 5.0


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: oms\r\nConnection: keep-alive\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    await asyncio.wait_for(reader.readexactly(length), 10)
    return head.split(b"\r\n", 1)[0]


async def test_an_idle_connection_is_still_served_after_a_pause(pipeline) -> None:
    address = urlsplit(LOCAL.http_url("capture"))
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        assert await get(reader, writer, "/healthz") == b"HTTP/1.1 200 OK"
        # when the connection stays idle for longer than uvicorn would have kept it
        await asyncio.sleep(UVICORN_DEFAULT_KEEP_ALIVE + 1.5)
        # then the same connection still carries the next request
        assert await get(reader, writer, "/healthz") == b"HTTP/1.1 200 OK"
    finally:
        writer.close()
