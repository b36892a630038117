"""A TCP proxy on loopback whose open connections can be frozen: they stay open but
carry nothing more, as when a network drops packets without closing anything. It can
also delay what clients send, as a slow network does."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class FreezingProxy:
    def __init__(self, target_host: str, target_port: int, *, send_delay: float = 0.0) -> None:
        self._target = (target_host, target_port)
        self._send_delay = send_delay
        self._server: asyncio.Server | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.freeze()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def freeze(self) -> None:
        """Stop carrying data on every connection open now; new ones work normally."""
        for pump in self._pumps:
            pump.cancel()
        self._pumps.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, upstream_writer]
        loop = asyncio.get_running_loop()
        self._pumps += [
            loop.create_task(_pump(reader, upstream_writer, self._send_delay)),
            loop.create_task(_pump(upstream_reader, writer, 0.0)),
        ]


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
