"""Request bodies read by hand, once the caller is known.

FastAPI parses a body parameter before it runs the route's dependencies, so a malformed body
from a caller without a key was answered 400 rather than 401, and from an operator on an admin
route 400 rather than 403. A route that reads its body with `checked` names the caller first;
its OpenAPI document gets the body's schema from `openapi.json_body`.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from subsidy_common.problems import validated_body

M = TypeVar("M", bound=BaseModel)


async def checked(request: Request, model: type[M]) -> tuple[bytes, M]:
    """The body as sent, and as the model reads it; 422 naming each field that is wrong."""
    body = await request.body()  # bounded by the input guard
    return body, validated_body(model, body)
