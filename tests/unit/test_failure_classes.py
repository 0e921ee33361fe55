"""Failures are told apart by what retrying can do: an outage is waited out, contention is retried a few
times, anything else is permanent and takes the dead-letter path at once."""

import socket

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from shared.backbone.failures import Failure, classify, describe


def postgres(error_class: type[asyncpg.PostgresError], message: str = "from the server") -> asyncpg.PostgresError:
    return error_class(message)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        socket.gaierror(-2, "Name or service not known"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        TimeoutError(),
        postgres(asyncpg.ConnectionDoesNotExistError),
        postgres(asyncpg.ConnectionFailureError),
        postgres(asyncpg.CannotConnectNowError),
        postgres(asyncpg.TooManyConnectionsError),
        postgres(asyncpg.AdminShutdownError),
        postgres(asyncpg.CrashShutdownError),
        postgres(asyncpg.exceptions.DiskFullError),
        asyncpg.InterfaceError("connection is closed"),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.NodeNotReadyError(),
        kafka_errors.NotLeaderForPartitionError(),
        kafka_errors.RequestTimedOutError(),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.NotEnoughReplicasError(),
    ],
    ids=lambda e: e.__class__.__name__,
)
def test_the_database_or_broker_being_unavailable_is_waited_out(error) -> None:
    assert classify(error) is Failure.UNAVAILABLE


@pytest.mark.parametrize(
    "error",
    [
        postgres(asyncpg.DeadlockDetectedError),
        postgres(asyncpg.SerializationError),
        postgres(asyncpg.LockNotAvailableError),
        postgres(asyncpg.exceptions.IdleInTransactionSessionTimeoutError),
    ],
    ids=lambda e: e.__class__.__name__,
)
def test_contention_is_retried_a_bounded_number_of_times(error) -> None:
    assert classify(error) is Failure.CONTENTION


@pytest.mark.parametrize(
    "error",
    [
        postgres(asyncpg.QueryCanceledError, "canceling statement due to statement timeout"),
        postgres(asyncpg.CheckViolationError),
        postgres(asyncpg.UniqueViolationError),
        postgres(asyncpg.UndefinedTableError),
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
        kafka_errors.MessageSizeTooLargeError(),
        kafka_errors.RecordTooLargeError(),
        kafka_errors.TopicAuthorizationFailedError(),
        kafka_errors.ClusterAuthorizationFailedError(),
        kafka_errors.CorruptRecordException(),
        FileNotFoundError(2, "No such file"),
        ValueError("a handler bug"),
        KeyError("missing"),
        RecursionError(),
    ],
    ids=lambda e: e.__class__.__name__,
)
def test_everything_else_is_permanent(error) -> None:
    assert classify(error) is Failure.PERMANENT


def test_a_reason_names_the_class_and_the_first_line_only() -> None:
    error = asyncpg.QueryCanceledError("canceling statement due to statement timeout\nCONTEXT: SQL function")
    assert describe(error) == "QueryCanceledError: canceling statement due to statement timeout"
    assert describe(kafka_errors.KafkaConnectionError()).startswith("KafkaConnectionError")
    assert describe(KeyError()) == "KeyError"
