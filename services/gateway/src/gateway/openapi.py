"""What the OpenAPI document says about errors, shared by every route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from subsidy_common.problems import PROBLEM_JSON


class ValidationItem(BaseModel):
    """One field that failed validation."""

    loc: list[str | int] = Field(description="出错字段的位置")
    msg: str = Field(description="原因")
    type: str | None = Field(default=None, description="错误类别")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(
        description="问题类型 URI",
        examples=["https://subsidy.example.cn/problems/validation-error"],
    )
    title: str = Field(description="简短标题", examples=["Unprocessable Content"])
    status: int = Field(description="HTTP 状态码", examples=[422])
    detail: str | None = Field(
        default=None, description="说明", examples=["Invalid request: body.region"]
    )
    errors: list[ValidationItem] | None = Field(default=None, description="逐字段的错误")


def _problem(description: str, status: int, detail: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": {
                    "type": "about:blank",
                    "title": description,
                    "status": status,
                    "detail": detail,
                },
            }
        },
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Bad Request", 400, "The body is not valid JSON."),
    401: _problem(
        "Unauthorized", 401, "An API key is required: send Authorization: Bearer <api key>."
    ),
    403: _problem("Forbidden", 403, "This operation needs the admin role."),
    413: _problem("Content Too Large", 413, "The request body is too large."),
    422: _problem("Unprocessable Content", 422, "Invalid request: body.region"),
    429: _problem("Too Many Requests", 429, "Rate limit exceeded."),
    503: _problem("Service Unavailable", 503, "The registry service is unavailable."),
    504: _problem("Gateway Timeout", 504, "The registry service did not answer in time."),
}

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _problem("Not Found", 404, "No tenant 5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10."),
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _problem(
        "Conflict", 409, "This is the last active admin key; issue another admin key first."
    ),
}
