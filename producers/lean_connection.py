"""Asyncio Redis connections that cost less per command, with redis-py's behaviour.

Two costs of redis-py's asyncio connection show in the worker's profile
(bench/throughput.py --profile), and both have a cheaper twin in redis-py itself:

* the write timeout: every write is bounded with `asyncio.wait_for` when a socket timeout
  is set, which on Python 3.11 wraps each command's write in a new Task. A write to a
  socket whose buffer has room completes at once; only a write that leaves bytes buffered
  (the kernel's buffer is full: Redis stalled or the network is slow) can block, and only
  then is the timeout armed (`asyncio.timeout`, no Task);
* packing: the asyncio connection packs commands in Python even with hiredis installed;
  redis-py's blocking connection packs them with hiredis (`HiredisRespSerializer`), and so
  do these.

The read timeout, the error handling and the disconnects are redis-py's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

_HIREDIS_PACKER = HiredisRespSerializer() if HIREDIS_AVAILABLE else None


class _LeanConnection(AbstractConnection):
    """`send_packed_command` with the timeout armed only for a write that would block;
    `pack_command` by hiredis when it is installed."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if _HIREDIS_PACKER is None:
            return super().pack_command(*args)
        packed: list[bytes] = _HIREDIS_PACKER.pack(*args)
        return packed

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


def _lean(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    if issubclass(connection_class, _LeanConnection):
        return connection_class
    if connection_class not in _CLASSES:
        name = f"Lean{connection_class.__name__}"
        _CLASSES[connection_class] = type(name, (_LeanConnection, connection_class), {})
    return _CLASSES[connection_class]


def use_lean_connections(client: aioredis.Redis) -> aioredis.Redis:
    """Make the client's pool open lean connections (TCP, TLS, Unix sockets and
    Sentinel-managed ones alike); returns the client."""
    pool = client.connection_pool
    pool.connection_class = _lean(pool.connection_class)
    return client
