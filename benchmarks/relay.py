"""A bare relay in front of Meilisearch: the least that any API in between adds.

``python -m benchmarks.relay MEILI_URL --port PORT`` (the master key in ``MEILI_MASTER_KEY``) listens
on 127.0.0.1:PORT and passes each ``POST`` it receives to Meilisearch over emall's own search
connections (``emall.search.connections``), then returns Meilisearch's status and body as they
came. It reads no credential, parses no JSON, checks and builds nothing. Measured against raw
Meilisearch with the same requests, it shows what the extra hop costs by itself (one more
process woken twice per request, two more loopback sends), so that the search benchmark can
tell the hop's share of emall's overhead at concurrency 1 from emall's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import uvloop

from benchmarks.harness import served
from emall.search.connections import SearchConnections


class _Downstream(asyncio.Protocol):
    """One client connection: its requests are relayed in order, one at a time."""

    def __init__(self, upstream: SearchConnections) -> None:
        self.upstream = upstream
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.busy = True
            self.task = asyncio.ensure_future(self._relay())

    async def _relay(self) -> None:
        try:
            while (request := self._next_request()) is not None:
                path, body = request
                status, answer = await self.upstream.post(path, body)
                if self.transport is None or self.transport.is_closing():
                    return
                self.transport.write(
                    b"HTTP/1.1 %d \r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                    % (status, len(answer))
                    + answer
                )
        finally:
            self.busy = False

    def _next_request(self) -> tuple[str, bytes] | None:
        """(path without its leading slash, body) of the next whole request, if it has come."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        request_line, *headers = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = 0
        for header in headers:
            name, _, value = header.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        return request_line.split(" ")[1].lstrip("/"), body


async def serve(meili_url: str, key: str, port: int) -> None:
    url = urlsplit(meili_url)
    upstream = SearchConnections(
        url.hostname or "127.0.0.1", url.port or 80, url.path, f"Bearer {key}", timeout=30.0
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Downstream(upstream), "127.0.0.1", port)
    await server.serve_forever()


@asynccontextmanager
async def relay(meili_url: str, key: str) -> AsyncIterator[tuple[str, int]]:
    """(base URL, pid) of a relay to ``meili_url`` in its own process, until the block ends."""
    # Meilisearch answers the relayed probe (POST /health) with 405: the relay is up.
    async with served(
        "benchmarks.relay",
        [meili_url],
        {"MEILI_MASTER_KEY": key},
        what="the relay",
        ready="/health",
    ) as server:
        yield server.base_url, server.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("meili_url")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    meili_url, port = args.meili_url, args.port
    uvloop.run(serve(meili_url, os.environ["MEILI_MASTER_KEY"], port))


if __name__ == "__main__":
    main()
