"""Request headers read by hand on the hot routes, with the 422 FastAPI would give.

FastAPI inspects a header parameter's annotation on every request it receives; for each header of
a claim that was about a tenth of a service's work per request (bench/RESULTS.md, seventh
series). A `HandHeader` reads the header from the request, checks it as the parameter did and
raises the same validation error, and describes itself for the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class HandHeader:
    """One header: its name, whether it is required, its length bounds, and whether it must
    come `once` (a second one would otherwise be passed over unread)."""

    name: str
    required: bool = False
    min_length: int = 0
    max_length: int | None = None
    description: str = ""
    once: bool = False

    def read(self, request: Request) -> str | None:
        """The header's value, None when it is absent and optional; 422 otherwise."""
        value = request.headers.get(self.name)
        if value is None:
            if self.required:
                raise self._invalid("missing", "Field required", None, {})
            return None
        if self.once and len(values := request.headers.getlist(self.name)) > 1:
            raise self._invalid(
                "value_error", "Sent more than once; send it once", ", ".join(values), {}
            )
        if len(value) < self.min_length:
            unit = "character" if self.min_length == 1 else "characters"
            raise self._invalid(
                "string_too_short",
                f"String should have at least {self.min_length} {unit}",
                value,
                {"min_length": self.min_length},
            )
        if self.max_length is not None and len(value) > self.max_length:
            raise self._invalid(
                "string_too_long",
                f"String should have at most {self.max_length} characters",
                value,
                {"max_length": self.max_length},
            )
        return value

    def require(self, request: Request) -> str:
        """The value of a header the route cannot do without; 422 when it is absent."""
        value = self.read(request)
        if value is None:
            raise self._invalid("missing", "Field required", None, {})
        return value

    def parameter(self) -> dict[str, Any]:
        """The OpenAPI parameter object that documents the header."""
        schema: dict[str, Any] = {"type": "string", "title": self.name}
        if self.description:  # where FastAPI puts it too
            schema["description"] = self.description
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        parameter: dict[str, Any] = {
            "name": self.name,
            "in": "header",
            "required": self.required,
            "schema": schema,
        }
        if self.description:
            parameter["description"] = self.description
        return parameter

    def _invalid(
        self, kind: str, message: str, value: str | None, context: dict[str, Any]
    ) -> RequestValidationError:
        error: dict[str, Any] = {
            "type": kind,
            "loc": ("header", self.name),
            "msg": message,
            "input": value,
        }
        if context:
            error["ctx"] = context
        return RequestValidationError([error])


def documented(*headers: HandHeader) -> dict[str, Any]:
    """`openapi_extra` declaring headers a route reads by hand."""
    return {"parameters": [header.parameter() for header in headers]}
