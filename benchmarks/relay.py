"""A bare relay in front of Meilisearch: the least that any API in between adds.

``python -m benchmarks.relay MEILI_URL PORT`` (the master key in ``MEILI_MASTER_KEY``) listens
on 127.0.0.1:PORT and passes each ``POST`` it receives to Meilisearch over emall's own search
connections (``emall.search.connections``), then returns Meilisearch's status and body as they
came. It reads no credential, parses no JSON, checks and builds nothing. Measured against raw
Meilisearch with the same requests, it shows what the extra hop costs by itself (one more
process woken twice per request, two more loopback sends), so that the search benchmark can
tell the hop's share of emall's overhead at concurrency 1 from emall's own work.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import uvloop

from benchmarks.harness import free_port
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
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.relay", meili_url, str(port)],
        env={**os.environ, "MEILI_MASTER_KEY": key},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(200):
                if process.poll() is not None:
                    raise RuntimeError(f"the relay exited with {process.returncode}")
                try:
                    # Meilisearch answers a search of a missing index with 404: the relay is up.
                    await probe.post(f"{base}/indexes/_probe/search", content=b"{}")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the relay did not answer within 10 s")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    meili_url, port = sys.argv[1], int(sys.argv[2])
    uvloop.run(serve(meili_url, os.environ["MEILI_MASTER_KEY"], port))


if __name__ == "__main__":
    main()
