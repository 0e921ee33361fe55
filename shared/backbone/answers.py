"""The answers every service's HTTP API may give besides its own, declared in its OpenAPI document so that clients
(and API fuzzers, which check each status code and shape against the document) can rely on them. Documentation
only: the endpoints, the keys' dependencies (shared/backbone/auth.py) and the middleware build the answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

Answers = dict[int | str, dict[str, Any]]


class Declared(BaseModel):
    """An answer's shape as the document declares it, every key named: one the service sends undeclared fails the
    fuzz test's check of the document, rather than reaching clients undocumented."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """A request refused before any business rule: no key, a body that is not JSON or too large, an unknown id."""

    model_config = ConfigDict(extra="forbid")
    detail: str


def refused(model: type[BaseModel], description: str) -> dict[str, Any]:
    """One answer's declaration: its shape and what it means."""
    return {"model": model, "description": description}


NOT_PARSED: Answers = {400: refused(Problem, "The body could not be read")}
TOO_LARGE: Answers = {413: refused(Problem, "The body is over the size limit")}
WITH_A_BODY: Answers = {**NOT_PARSED, **TOO_LARGE}
OVER_RATE: Answers = {429: refused(Problem, "The API key is over its rate; see Retry-After")}
NO_KEY: Answers = {401: refused(Problem, "No API key, or an unknown, malformed or revoked one")}
# A channel's key acts for its own channel's orders, an operator's for any.
AUTHENTICATED: Answers = {**NO_KEY, 403: refused(Problem, "The API key acts for another channel"), **OVER_RATE}
OPERATOR_ONLY: Answers = {**NO_KEY, 403: refused(Problem, "Not an operator's key"), **OVER_RATE}


def not_found(description: str) -> Answers:
    return {404: refused(Problem, description)}


def either(description: str, *shapes: str) -> dict[str, Any]:
    """One answer's declaration in one of several shapes, by their names among the document's schemas: each must
    also be another answer's model (or FastAPI's own), which puts it there."""
    schemas = [{"$ref": f"#/components/schemas/{shape}"} for shape in shapes]
    return {"description": description, "content": {"application/json": {"schema": {"anyOf": schemas}}}}


def invalid_or(description: str, *refusals: type[BaseModel]) -> Answers:
    """A 422 that is either FastAPI's schema error (`detail` a list) or the request's own refusal in one of the
    given shapes (see `either`)."""
    return {422: either(description, "HTTPValidationError", *(model.__name__ for model in refusals))}
