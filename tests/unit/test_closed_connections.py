"""On uvloop, a request written to a connection that is already closed fails as a broken connection (which aiokafka
retries after reconnecting), not with the RuntimeError that ended a consumer's group coordination for good."""

import asyncio

import pytest
import uvloop
from aiokafka import errors
from aiokafka.conn import AIOKafkaConnection
from aiokafka.protocol.metadata import MetadataRequest

from shared.backbone import closed_connections


async def request_on_a_closed_connection() -> tuple[AIOKafkaConnection, BaseException]:
    server = await asyncio.start_server(lambda _reader, writer: writer.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = AIOKafkaConnection("127.0.0.1", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connection._reader, connection._writer = reader, writer
    connection._read_task = asyncio.get_running_loop().create_future()
    connection._read_task.set_result(None)
    connection._versions = {MetadataRequest.API_KEY: (0, 0)}
    writer.close()  # as when the broker went away and the transport was torn down
    await writer.wait_closed()
    try:
        connection.send(MetadataRequest([]))
    except BaseException as exc:  # what it raises is what is checked
        failure = exc
    else:
        pytest.fail("a request went out on a closed connection")
    server.close()
    return connection, failure


def test_uvloop_itself_raises_a_runtime_error_that_aiokafka_does_not_expect(monkeypatch) -> None:
    # given aiokafka as it is
    monkeypatch.setattr(AIOKafkaConnection, "send", AIOKafkaConnection.send)
    monkeypatch.setattr(AIOKafkaConnection, closed_connections._GUARDED, False, raising=False)
    _, failure = uvloop.run(request_on_a_closed_connection())
    assert isinstance(failure, RuntimeError) and "closed" in str(failure)


def test_guarded_a_write_to_a_closed_connection_is_a_broken_connection(monkeypatch) -> None:
    # given aiokafka guarded as the services and the simulator run it
    monkeypatch.setattr(AIOKafkaConnection, "send", AIOKafkaConnection.send)
    monkeypatch.setattr(AIOKafkaConnection, closed_connections._GUARDED, False, raising=False)
    closed_connections.guard_closed_connections()
    # when a request is written to a connection the broker has closed
    connection, failure = uvloop.run(request_on_a_closed_connection())
    # then it fails as aiokafka's own broken connection does, and the connection is given up
    assert isinstance(failure, errors.KafkaConnectionError)
    assert not connection.connected()
