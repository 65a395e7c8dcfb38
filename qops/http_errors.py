"""The JSON bodies of the HTTP API's error answers, and their OpenAPI declarations.

Every error of ``qops api serve`` on a JSON path answers with one of two bodies:

- :class:`ErrorBody` (``{"detail": "<message>", "error": "<ErrorType>"}``): a qops error
  (404 not found, 422 bad input, 503 MongoDB unreachable) or an HTTP error of the framework
  (404 no such path);
- :class:`ValidationErrorBody` (``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``): a
  request that does not fit the declared parameters (422), one item per problem, ``loc``
  naming the parameter.

:func:`error_responses` declares them on an operation (FastAPI's ``responses=``), so the
OpenAPI lists every status an endpoint answers with and the body it carries. Pure pydantic:
the capabilities' routers use it without importing each other.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel


class ErrorBody(BaseModel):
    """A qops error (or an HTTP error) as JSON."""

    detail: str = Field(description="What failed, where, expected versus found.")
    error: str = Field(
        description="The error's type, e.g. EntityNotFoundError, InvalidQueryError, "
        "MongoUnavailableError, HTTPException."
    )


class ValidationProblem(BaseModel):
    """One way a request does not fit the declared parameters."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description='Where: e.g. ["query", "limit"].')
    msg: str = Field(description="What is wrong.")
    type: str = Field(description="The kind of problem, e.g. greater_than_equal.")
    input: JsonValue = Field(default=None, description="The value given.")


class ValidationErrorBody(BaseModel):
    """A request refused before it reached a service: one item per problem."""

    detail: list[ValidationProblem]


class UnprocessableBody(RootModel[ErrorBody | ValidationErrorBody]):
    """The body of a 422: a qops bad-input error, or the request's validation problems."""


_DESCRIPTIONS = {
    404: "Not found: the id names nothing in the project.",
    422: "Bad input: a parameter outside what the schema declares (validation problems), "
    "or refused by the service (a qops error naming it).",
    503: "MongoDB unreachable: the database did not answer (a message naming it).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the given error statuses (404, 422, 503).

    Raises:
        KeyError: A status qops does not answer with.
    """
    return {
        status: {
            "model": UnprocessableBody if status == 422 else ErrorBody,
            "description": _DESCRIPTIONS[status],
        }
        for status in statuses
    }
