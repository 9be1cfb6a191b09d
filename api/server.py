"""How emall runs under uvicorn: one place for ``emall serve`` and the benchmarks' server.

uvicorn writes a response's status line and headers in one socket send and its body in
another. On the loopback each send wakes the receiving process, and on this project's 2-core
machines the first of the two cost about a quarter of the server's CPU per search
(benchmarks/RESULTS.md). ``CoalescingHttpToolsProtocol`` hands uvicorn a transport that holds
the writes of one event-loop turn and sends them together: a response whose body is ready (all
of emall's) goes out in one send. Streams and large bodies are unchanged, only joined per turn.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _CoalescingTransport:
    """A transport whose writes within one event-loop turn go out as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response in as few sends as it can."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        coalescing: Any = _CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(coalescing)


def run(app: Any, *, host: str, port: int, log_level: str, factory: bool = False) -> None:
    """Serve ``app`` (or, with ``factory``, the app an import string's factory returns)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        http=CoalescingHttpToolsProtocol,
        factory=factory,
    )


def main() -> None:
    """``python -m api.server module:factory --port N``: the benchmarks' server process."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("factory", help="module:function returning the Litestar app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    run(args.factory, host=args.host, port=args.port, log_level=args.log_level, factory=True)


if __name__ == "__main__":
    main()
