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
    502: _problem("Bad Gateway", 502, "The calculator service gave an answer that is not one."),
    503: _problem("Service Unavailable", 503, "The registry service is unavailable."),
    504: _problem("Gateway Timeout", 504, "The registry service did not answer in time."),
}

# Every operation with a body: one declared as something other than JSON is refused.
UNSUPPORTED_MEDIA_TYPE = _problem(
    "Unsupported Media Type",
    415,
    "The request body must be JSON: send it with Content-Type: application/json.",
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _problem("Not Found", 404, "No tenant 5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10."),
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _problem(
        "Conflict", 409, "This is the last active admin key; issue another admin key first."
    ),
}

# Problems particular to some operations, declared so that generated clients know them.
OPERATION_PROBLEMS: dict[tuple[str, str], dict[int, tuple[str, str]]] = {
    ("get", "/v1/policies/{document_id}"): {404: ("Not Found", "No document 'x'.")},
    ("get", "/v1/policies/{document_id}/versions"): {404: ("Not Found", "No document 'x'.")},
    ("post", "/v1/admin/policies"): {409: ("Conflict", "A document with this id exists.")},
    ("put", "/v1/admin/policies/{document_id}"): {
        404: ("Not Found", "No document 'x'."),
        412: ("Precondition Failed", "The document changed since that version."),
        428: ("Precondition Required", "Send If-Match with the ETag of the version you amend."),
    },
    ("post", "/v1/admin/policies/{document_id}/repeal"): {404: ("Not Found", "No document 'x'.")},
    ("post", "/v1/admin/tenants"): {409: ("Conflict", "A tenant with this name exists.")},
    ("post", "/v1/claims"): {
        409: ("Conflict", "A request with this Idempotency-Key is still being processed.")
    },
    ("get", "/v1/claims/{claim_id}"): {404: ("Not Found", "No claim 'x'.")},
    ("post", "/v1/claims/{claim_id}/revoke"): {
        404: ("Not Found", "No claim 'x'."),
        409: ("Conflict", "Only a paid claim is revoked, once."),
    },
    ("post", "/v1/claims/{claim_id}/review"): {
        404: ("Not Found", "No claim 'x'."),
        409: ("Conflict", "Only a claim held for review is reviewed, once."),
    },
}

# Headers without which the operation is refused (with 400 or 428, as the contract says).
REQUIRED_HEADERS: dict[tuple[str, str], str] = {
    ("post", "/v1/claims"): "Idempotency-Key",
    ("put", "/v1/admin/policies/{document_id}"): "If-Match",
}


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


# Headers the gateway sends: the rate limit's with an answer to a key that was counted, the
# others with some answers only.
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("本租户每个时间窗口可发的请求数", "integer"),
    "RateLimit-Remaining": _header("本窗口剩余的请求数", "integer"),
    "RateLimit-Reset": _header("本窗口重置前的秒数", "integer"),
}
RETRY_AFTER = {"Retry-After": _header("建议多少秒后重试", "integer")}
ETAG = {"ETag": _header("该版本的实体标签；修订时作为 If-Match 发回")}
# Operations whose successful answer names the document's version.
ETAG_OPERATIONS = {
    ("get", "/v1/policies/{document_id}"),
    ("post", "/v1/admin/policies"),
    ("put", "/v1/admin/policies/{document_id}"),
    ("post", "/v1/admin/policies/{document_id}/repeal"),
}

# Operations whose 201 names where the new resource is read.
LOCATION_OPERATIONS = {
    ("post", "/v1/claims"): "新申报的地址：GET /v1/claims/{id}",
    ("post", "/v1/admin/policies"): "新文件的地址：GET /v1/policies/{document_id}",
}


def json_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body by hand: the schema it is checked
    against, by name (declared through `complete`)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def complete(schema: dict[str, Any], extra_schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Add what FastAPI cannot infer: the Problem schema, bodies read by hand, the problems
    particular to operations, and headers that are required though checked by the handler."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, sub in extra_schemas.items():
        for inner, definition in sub.pop("$defs", {}).items():
            components.setdefault(inner, definition)
        components[name] = sub
    for (method, path), problems in OPERATION_PROBLEMS.items():
        operation = schema["paths"].get(path, {}).get(method)
        if operation is not None:
            for status, (title, detail) in problems.items():
                operation["responses"].setdefault(str(status), _problem(title, status, detail))
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                operation["responses"].setdefault("415", UNSUPPORTED_MEDIA_TYPE)
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                if operation.get("security") and (status.startswith("2") or status == "429"):
                    headers.update(RATE_LIMIT_HEADERS)
                if status in ("429", "503"):
                    headers.update(RETRY_AFTER)
                if status.startswith("2") and (method, path) in ETAG_OPERATIONS:
                    headers.update(ETAG)
                if status == "201" and (where := LOCATION_OPERATIONS.get((method, path))):
                    headers["Location"] = _header(where)
                if status == "409" and (method, path) == ("post", "/v1/claims"):
                    headers.update(RETRY_AFTER)  # the key's first request is still at work
                if not headers:
                    del response["headers"]
    for (method, path), header in REQUIRED_HEADERS.items():
        operation = schema["paths"].get(path, {}).get(method)
        for parameter in (operation or {}).get("parameters", []):
            if parameter["in"] == "header" and parameter["name"].lower() == header.lower():
                parameter["required"] = True
                parameter["schema"] = {
                    k: v for k, v in parameter["schema"].items() if k not in ("anyOf", "default")
                } | {"type": "string", "minLength": 1}
    return schema
