"""A service's views answering without a database, and the API fuzz test's check of an answer against the service's
own document (schemathesis' response_schema_conformance), for the unit tests of declared answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import schemathesis
from fastapi import FastAPI
from schemathesis.specs.openapi.checks import response_schema_conformance

from shared.backbone.runtime import Runtime


class _NoConnections:
    """The pool views acquire a connection from: the repository's functions are replaced, so none is used."""

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        yield None


class _Started:
    pool = _NoConnections()


NO_DATABASE = cast(Runtime, _Started())


def conforms(app: FastAPI, route: str, answer: httpx.Response, **path_parameters: Any) -> None:
    """Raises what the fuzz test would report of the answer to GET `route`, by the app's document."""
    operation = schemathesis.openapi.from_dict(app.openapi())[route]["GET"]
    operation.Case(path_parameters=path_parameters or None).validate_response(
        answer, checks=[response_schema_conformance]
    )
