"""Keep-alive HTTP/1.1 connections to Meilisearch for search requests, as asyncio protocols.

Searching is emall's hot path; everything else goes through the SDK's client. The connections of
an SDK client are kept beside it (``search_connections``) and closed with it
(``emall.search.client.SearchClient.aclose``), or when it is collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import weakref

from meilisearch_python_sdk import AsyncClient


class SearchConnections:
    """Keep-alive HTTP/1.1 connections to Meilisearch for searches.

    Searching is emall's hot path. Through httpx2 (the SDK's HTTP client: httpx2, httpcore2,
    h11 and anyio) a search request cost about 1.1 ms of CPU on the benchmark machine; one
    write and the reads of the answer on a kept connection cost about 0.1 ms. Everything else
    still goes through the SDK. Each connection is an asyncio protocol, so its socket stays
    registered with the event loop between requests (``loop.sock_recv`` would register and
    unregister it on every read: two more system calls each time). A search is read-only, so
    a request that fails on a kept connection (closed by the server meanwhile) is sent once
    more on a new one. The connections are closed with the SDK client they serve.
    """

    def __init__(self, host: str, port: int, prefix: str, authorization: str, timeout: float):
        self.address = (host, port)
        self.prefix = prefix.rstrip("/")
        self.head = (
            f"Host: {host}:{port}\r\nAuthorization: {authorization}\r\n"
            "Content-Type: application/json\r\nAccept-Encoding: identity\r\n"
        )
        self.timeout = timeout
        self.idle: list[_Connection] = []
        self.opened = 0  # connections made so far
        weakref.finalize(self, _close_all, self.idle)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of ``POST <prefix>/<path>`` with a JSON body."""
        request = (
            f"POST {self.prefix}/{path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        async with asyncio.timeout(self.timeout):
            while self.idle:
                kept = self.idle.pop()
                if kept.closed:
                    continue
                try:
                    return await self._exchange(kept, request)
                except OSError:
                    break  # the server closed the kept connection: once more on a new one
            return await self._exchange(await self._connect(), request)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, *self.address)
        self.opened += 1
        return connection

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[int, bytes]:
        try:
            connection.write(request)
            status, body, reusable = await _read_response(connection)
        except BaseException:
            connection.close()
            raise
        if reusable and not connection.closed:
            self.idle.append(connection)
        else:
            connection.close()
        return status, body


class _Connection(asyncio.Protocol):
    """One connection: what has arrived, and a way to wait for more."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self._more: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self._more is not None and not self._more.done():
            self._more.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._more is not None and not self._more.done():
            self._more.set_result(None)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise ConnectionResetError("Meilisearch closed the connection")
        self.transport.write(data)

    async def fill(self) -> None:
        """Wait for more data; ConnectionResetError when the server closed the connection."""
        if self.closed:
            raise ConnectionResetError("Meilisearch closed the connection")
        self._more = asyncio.get_running_loop().create_future()
        try:
            await self._more
        finally:
            self._more = None
        if self.closed and not self.buffer:
            raise ConnectionResetError("Meilisearch closed the connection")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _close_all(connections: list[_Connection]) -> None:
    while connections:
        with contextlib.suppress(RuntimeError):  # at exit, its event loop may be closed
            connections.pop().close()


async def _read_response(connection: _Connection) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection may be kept) of one HTTP/1.1 response."""
    buffer = connection.buffer
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        await connection.fill()
    status_line, *lines = buffer[:end].decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get("connection") != "close"
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(buffer) < size:
            await connection.fill()
        body = bytes(buffer[:size])
        del buffer[:size]
        return status, body, keep and not buffer
    if headers.get("transfer-encoding") == "chunked":
        chunks = bytearray()
        while True:
            while (line_end := buffer.find(b"\r\n")) < 0:
                await connection.fill()
            size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
            del buffer[: line_end + 2]
            if size == 0:  # then optional trailers and an empty line
                while not buffer.startswith(b"\r\n") and b"\r\n\r\n" not in buffer:
                    await connection.fill()
                return status, bytes(chunks), False
            while len(buffer) < size + 2:
                await connection.fill()
            chunks += buffer[:size]
            del buffer[: size + 2]
    while not connection.closed:  # no length: the body runs to the end of the connection
        try:
            await connection.fill()
        except ConnectionResetError:
            break
    return status, bytes(buffer), False


_connections: weakref.WeakKeyDictionary[AsyncClient, SearchConnections] = (
    weakref.WeakKeyDictionary()
)


def close_search_connections(client: AsyncClient) -> None:
    """Close the kept connections of an SDK client (when it is closed)."""
    connections = _connections.pop(client, None)
    if connections is not None:
        _close_all(connections.idle)


def search_connections(client: AsyncClient) -> SearchConnections | None:
    """The search connections of an SDK client (None for https, or once it is closed)."""
    http = client.http_client
    if http.is_closed:
        return None
    connections = _connections.get(client)
    if connections is None:
        url = http.base_url
        if url.scheme != "http" or not url.host:
            return None
        timeout = http.timeout.read or 10.0
        connections = _connections[client] = SearchConnections(
            url.host,
            url.port or 80,
            url.path,
            http.headers.get("authorization", ""),
            timeout,
        )
    return connections
