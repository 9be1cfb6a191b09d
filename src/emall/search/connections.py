"""Keep-alive HTTP/1.1 connections to Meilisearch for search requests, on plain sockets.

Searching is emall's hot path; everything else goes through the SDK's client. The connections of
an SDK client are kept beside it (``search_connections``) and closed when it is collected.
"""

from __future__ import annotations

import asyncio
import socket
import weakref

from meilisearch_python_sdk import AsyncClient


class SearchConnections:
    """Keep-alive HTTP/1.1 connections to Meilisearch for searches, on plain sockets.

    Searching is emall's hot path. Through httpx2 (the SDK's HTTP client: httpx2, httpcore2,
    h11 and anyio) a search request cost about 1.1 ms of CPU on the benchmark machine; one
    write and the reads of the answer on a kept socket cost about 0.1 ms. Everything else
    still goes through the SDK. A search is read-only, so a request that fails on a kept
    connection (closed by the server meanwhile) is sent once more on a new one. The sockets
    are closed when the SDK client they serve is collected (or at exit).
    """

    def __init__(self, host: str, port: int, prefix: str, authorization: str, timeout: float):
        self.address = (host, port)
        self.prefix = prefix.rstrip("/")
        self.head = (
            f"Host: {host}:{port}\r\nAuthorization: {authorization}\r\n"
            "Content-Type: application/json\r\nAccept-Encoding: identity\r\n"
        )
        self.timeout = timeout
        self.idle: list[socket.socket] = []
        weakref.finalize(self, _close_all, self.idle)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of ``POST <prefix>/<path>`` with a JSON body."""
        request = (
            f"POST {self.prefix}/{path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        async with asyncio.timeout(self.timeout):
            if self.idle:
                try:
                    return await self._exchange(self.idle.pop(), request)
                except OSError:
                    pass  # the server closed the kept connection: once more on a new one
            return await self._exchange(await self._connect(), request)

    async def _connect(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        error: OSError = OSError(f"cannot resolve {self.address}")
        for family, kind, proto, _, address in await loop.getaddrinfo(
            *self.address, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise error

    async def _exchange(self, sock: socket.socket, request: bytes) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(sock, request)
            status, body, reusable = await _read_response(loop, sock)
        except BaseException:
            sock.close()
            raise
        if reusable:
            self.idle.append(sock)
        else:
            sock.close()
        return status, body


def _close_all(sockets: list[socket.socket]) -> None:
    while sockets:
        sockets.pop().close()


async def _fill(loop: asyncio.AbstractEventLoop, sock: socket.socket, buffer: bytearray) -> None:
    chunk = await loop.sock_recv(sock, 65536)
    if not chunk:
        raise ConnectionResetError("Meilisearch closed the connection")
    buffer += chunk


async def _read_response(
    loop: asyncio.AbstractEventLoop, sock: socket.socket
) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection may be kept) of one HTTP/1.1 response."""
    buffer = bytearray()
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        await _fill(loop, sock, buffer)
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
            await _fill(loop, sock, buffer)
        return status, bytes(buffer[:size]), keep and len(buffer) == size
    if headers.get("transfer-encoding") == "chunked":
        body = bytearray()
        while True:
            while (line_end := buffer.find(b"\r\n")) < 0:
                await _fill(loop, sock, buffer)
            size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
            del buffer[: line_end + 2]
            if size == 0:  # then optional trailers and an empty line
                while not buffer.startswith(b"\r\n") and b"\r\n\r\n" not in buffer:
                    await _fill(loop, sock, buffer)
                return status, bytes(body), False
            while len(buffer) < size + 2:
                await _fill(loop, sock, buffer)
            body += buffer[:size]
            del buffer[: size + 2]
    while True:  # no length: the body runs to the end of the connection
        try:
            await _fill(loop, sock, buffer)
        except ConnectionResetError:
            return status, bytes(buffer), False


_connections: weakref.WeakKeyDictionary[AsyncClient, SearchConnections] = (
    weakref.WeakKeyDictionary()
)


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
