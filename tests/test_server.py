"""api.server: uvicorn with the protocol that writes a response's headers and body together."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar, get
from litestar.response import Stream

from api.server import CoalescingHttpToolsProtocol, _CoalescingTransport

BIG = "价" * 400_000  # 1.2 MB of UTF-8: more than one socket buffer


class _Recording(asyncio.Transport):
    """Records what reaches the socket: the test's stand-in for the kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_the_writes_of_one_turn_go_out_as_one() -> None:
    real = _Recording()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert real.sent == []
    await asyncio.sleep(0)
    assert real.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.sent[1:] == [b"next"]


async def test_close_sends_what_is_pending_first() -> None:
    real = _Recording()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert real.sent == [b"last words"] and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert real.sent == [b"last words"]


@get("/small", sync_to_thread=False)
def small() -> dict[str, str]:
    return {"名称": "办公椅"}


@get("/big", sync_to_thread=False)
def big() -> str:
    return BIG


@get("/stream", sync_to_thread=False)
def stream() -> Stream:
    async def parts() -> AsyncIterator[bytes]:
        for n in range(5):
            await asyncio.sleep(0.01)
            yield f"part {n};".encode()

    return Stream(parts())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(
        Litestar([small, big, stream]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=CoalescingHttpToolsProtocol,
        lifespan="off",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if running.started:
                break
            threading.Event().wait(0.01)
        assert running.started
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(10)


async def test_responses_are_whole_over_one_keep_alive_connection(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        for _ in range(20):
            response = await client.get("/small")
            assert response.status_code == 200
            assert response.json() == {"名称": "办公椅"}
        large = await client.get("/big")
        assert large.text == BIG
        streamed = await client.get("/stream")
        assert streamed.text == "".join(f"part {n};" for n in range(5))
        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["status_code"] == 404
        assert (await client.get("/small")).json() == {"名称": "办公椅"}


def test_a_response_arrives_in_one_piece_on_a_raw_socket(server: str) -> None:
    """Headers and body in one send: the first read after the request holds the whole
    response (on the loopback a single send of a few hundred bytes is read at once)."""
    host, port = server.removeprefix("http://").split(":")
    for _ in range(20):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")
            assert first.endswith('{"名称":"办公椅"}'.encode()), first
