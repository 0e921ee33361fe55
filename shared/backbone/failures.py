"""Which failures are worth retrying, for the consumer, the dead-letter path and the outbox relay.

- unavailable: the database or the broker is down, restarting, out of connections or unreachable. Waited out
  with capped backoff, without end: the record is fine, the infrastructure is not (never dead-lettered).
- contention: a deadlock, a serialization failure, a lock wait that timed out, a transaction stalled past the
  idle timeout. Retried a bounded number of times, and lock waits at least as long as a stalled holder can keep
  its locks (until the server ends its idle transaction); then the record is handled alone and, if it still fails,
  dead-lettered.
- permanent: anything else, e.g. a statement timeout (57014), a record too large for the broker, an
  authorization error, a constraint violation, a bug in a handler. Retrying cannot help: isolate at once.
"""

from __future__ import annotations

import enum

import asyncpg
from aiokafka import errors as kafka_errors


class Failure(enum.Enum):
    UNAVAILABLE = "unavailable"
    CONTENTION = "contention"
    PERMANENT = "permanent"


_DB_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # 08xxx: connection lost, refused, rejected
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.exceptions.InsufficientResourcesError,  # 53xxx: too many connections, disk full, out of memory
)
_DB_CONTENTION: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,  # 40P01
    asyncpg.SerializationError,  # 40001
    asyncpg.LockNotAvailableError,  # 55P03: lock_timeout
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,  # 25P03
)
# asyncpg's client-side errors about the caller's own arguments or setup are bugs, not outages.
_CLIENT_MISTAKES: tuple[type[BaseException], ...] = (
    asyncpg.exceptions._base.DataError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)
# Not flagged retriable by aiokafka, yet all they say is that the broker did not answer in time.
_KAFKA_UNAVAILABLE: tuple[type[BaseException], ...] = (
    kafka_errors.KafkaTimeoutError,
    kafka_errors.KafkaUnavailableError,
    kafka_errors.BrokerNotAvailableError,
    kafka_errors.NoBrokersAvailable,
    kafka_errors.RequestTimedOutError,
)
# Local files, not the network: a bug or a deployment mistake.
_FILE_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def waits_for_a_lock(exc: BaseException) -> bool:
    """Contention that means another session holds what this one needs (its lock wait timed out). A holder that
    stalled (a stopped or frozen instance) keeps its locks at most until the server ends its idle transaction."""
    return isinstance(exc, asyncpg.LockNotAvailableError)


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, _DB_CONTENTION):
        return Failure.CONTENTION
    if isinstance(exc, _DB_UNAVAILABLE + _KAFKA_UNAVAILABLE):
        return Failure.UNAVAILABLE
    if isinstance(exc, asyncpg.InterfaceError):  # "connection is closed", "pool is closing"
        return Failure.PERMANENT if isinstance(exc, _CLIENT_MISTAKES) else Failure.UNAVAILABLE
    if isinstance(exc, kafka_errors.KafkaError):
        return Failure.UNAVAILABLE if exc.retriable else Failure.PERMANENT
    # A server that does not answer within the client's own timeout (asyncpg's command_timeout, a bounded
    # Kafka send): the server-side statement_timeout is shorter, so a slow query ends as 57014 instead.
    if isinstance(exc, TimeoutError):
        return Failure.UNAVAILABLE
    if isinstance(exc, OSError) and not isinstance(exc, _FILE_ERRORS):
        return Failure.UNAVAILABLE
    return Failure.PERMANENT


def describe(exc: BaseException) -> str:
    """The class and the first line of the message, for a dead-letter reason (no stack, bounded)."""
    text = str(exc)
    first = text.splitlines()[0] if text else ""
    return f"{exc.__class__.__name__}: {first}"[:500] if first else exc.__class__.__name__
