"""The search connections to Meilisearch (emall.search.connections): kept, reused, replaced
when the server closed them, and every way an HTTP/1.1 body can be framed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from emall.search.connections import SearchConnections

Respond = Callable[[bytes], bytes]


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[SearchConnections, list[Respond], list[int]]]:
    """A tiny HTTP/1.1 server on 127.0.0.1 whose answers the test chooses, request by request,
    and the connections under test pointed at it. It records how many connections it saw."""
    answers: list[Respond] = []
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                writer.write(answers.pop(0)(body))
                await writer.drain()
                if not answers or answers[0] is _CLOSE:
                    if answers:
                        answers.pop(0)
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connections = SearchConnections("127.0.0.1", port, "", "Bearer k", timeout=5)
    try:
        yield connections, answers, accepted
    finally:
        server.close()


def _CLOSE(_: bytes) -> bytes:  # a marker: the server closes the connection after the answer
    return b""


def _json(status: int = 200, extra: str = "") -> Respond:
    def respond(body: bytes) -> bytes:
        payload = json.dumps({"echo": json.loads(body)}).encode()
        return (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload

    return respond


def _chunked(body: bytes) -> bytes:
    payload = json.dumps({"echo": json.loads(body)}).encode()
    half = len(payload) // 2
    chunks = [payload[:half], payload[half:]]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded


async def test_a_kept_connection_serves_the_next_requests(
    http_server: tuple[SearchConnections, list[Respond], list[int]],
) -> None:
    connections, answers, accepted = http_server
    answers.extend([_json(), _json(), _json(404)])
    for n in range(2):
        status, body = await connections.post("indexes/x/search", json.dumps({"q": n}).encode())
        assert (status, json.loads(body)) == (200, {"echo": {"q": n}})
    status, body = await connections.post("indexes/x/search", b'{"q":"\xe5\x8a\x9e"}')
    assert status == 404 and json.loads(body) == {"echo": {"q": "办"}}
    assert len(accepted) == connections.opened == 1


async def test_a_connection_the_server_closed_is_replaced(
    http_server: tuple[SearchConnections, list[Respond], list[int]],
) -> None:
    connections, answers, accepted = http_server
    answers.extend([_json(), _CLOSE, _json()])
    assert (await connections.post("s", b'{"q":1}'))[0] == 200
    await asyncio.sleep(0.05)  # the server has closed the kept connection meanwhile
    status, body = await connections.post("s", b'{"q":2}')
    assert (status, json.loads(body)) == (200, {"echo": {"q": 2}})
    assert len(accepted) == connections.opened == 2


async def test_chunked_and_close_framed_bodies(
    http_server: tuple[SearchConnections, list[Respond], list[int]],
) -> None:
    connections, answers, _ = http_server
    answers.append(_chunked)
    status, body = await connections.post("s", b'{"q":"chunked"}')
    assert (status, json.loads(body)) == (200, {"echo": {"q": "chunked"}})

    def until_close(request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + request

    answers.extend([until_close, _CLOSE])
    status, body = await connections.post("s", b'{"q":"close"}')
    assert (status, body) == (200, b'{"q":"close"}')
    assert connections.idle == []  # neither could be kept


async def test_a_refused_connection_is_an_os_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    connections = SearchConnections("127.0.0.1", port, "", "Bearer k", timeout=5)
    with pytest.raises(ConnectionRefusedError):
        await connections.post("s", b"{}")
