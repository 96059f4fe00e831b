"""A socket write timeout that costs nothing when the write does not block (asyncio clients).

redis-py's asyncio connections bound every write with `asyncio.wait_for` when a socket
timeout is set: on Python 3.11 that wraps each command's write in a new Task, about a third
of the worker's Redis client time per command (bench/throughput.py --profile). A write to a
socket whose buffer has room completes at once; only a write that leaves bytes buffered
(the kernel's buffer is full: Redis stalled or the network is slow) can block, and only
then is the timeout armed (`asyncio.timeout`, no Task). The read timeout, the error
handling and the disconnects are redis-py's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _CheapWriteTimeout(AbstractConnection):
    """`send_packed_command` with the timeout armed only for a write that would block."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if not self.is_connected:
            await self.connect()  # type: ignore[no-untyped-call]
        elif check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer: Any = self._writer
        try:
            writer.writelines(command)
            if self.socket_timeout and writer.transport.get_write_buffer_size():
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()  # returns at once: nothing is buffered
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {e}") from e
        except BaseException:
            # As redis-py: a write cut short leaves the stream unusable.
            await self.disconnect(nowait=True)
            raise


_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _cheap(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    if issubclass(connection_class, _CheapWriteTimeout):
        return connection_class
    if connection_class not in _CLASSES:
        name = f"CheapWrite{connection_class.__name__}"
        _CLASSES[connection_class] = type(name, (_CheapWriteTimeout, connection_class), {})
    return _CLASSES[connection_class]


def use_cheap_write_timeout(client: aioredis.Redis) -> aioredis.Redis:
    """Make the client's pool open connections with the cheap write timeout (TCP, TLS,
    Unix sockets and Sentinel-managed ones alike); returns the client."""
    pool = client.connection_pool
    pool.connection_class = _cheap(pool.connection_class)
    return client
