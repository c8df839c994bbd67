"""Requests in, responses out: parameters, errors, rendering and paging links, in one place.

- Parameters come from the query string, a form-encoded body or a JSON body, as Mastodon accepts them;
  arrays as ``id[]=1&id[]=2`` (or a JSON list).
- Errors are ``ApiError(status, message)``, rendered as Mastodon's ``{"error": "..."}``; anything else
  raised becomes a 500 with a generic message (and a log line), never a traceback in the body.
- Responses are JSON (orjson), or msgpack (``igcore.msgpack``) when the client accepts
  ``application/msgpack``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, QueryDict

import igcore.msgpack

from . import clients

log = logging.getLogger("igcore.web")
WORKER = str(os.getpid())
INT64_MAX = 2**63 - 1
MALFORMED = "The request is malformed"
UNEXPECTED = "An unexpected error occurred"
NOT_A_LIMIT = "limit must be a positive integer"
MSGPACK = "application/msgpack"


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def not_found() -> ApiError:
    return ApiError(404, "Record not found")


def unprocessable(message: str) -> ApiError:
    return ApiError(422, f"Validation failed: {message}")


# -- rendering --------------------------------------------------------------------------------------------


def render(
    request: HttpRequest, data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    if MSGPACK in request.headers.get("Accept", ""):
        response = HttpResponse(igcore.msgpack.packb(data), content_type=MSGPACK, status=status)
    else:
        response = HttpResponse(
            orjson.dumps(data), content_type="application/json; charset=utf-8", status=status
        )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(request: HttpRequest, status: int, message: str, **extra: object) -> HttpResponse:
    return render(request, {"error": message, **extra}, status)


class ApiMiddleware:
    """Turns every exception of a view into a JSON error, and names the worker that answered."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        response["X-Igcore-Worker"] = WORKER
        for name, value in getattr(request, "igcore_headers", {}).items():
            response[name] = value
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        return exception_response(request, exception)


def exception_response(request: HttpRequest, exception: BaseException) -> HttpResponse:
    if isinstance(exception, ApiError):
        return error_response(request, exception.status, exception.message, **exception.extra)
    if isinstance(exception, RequestDataTooBig):
        return error_response(request, 413, "The request body is too large")
    if isinstance(exception, (TooManyFieldsSent, SuspiciousOperation)):
        return error_response(request, 400, MALFORMED)
    if isinstance(exception, OperationalError) or clients.unavailable(exception):
        log.warning("unavailable while serving %s %s: %s", request.method, request.path, exception)
        return error_response(request, 503, "The service is temporarily unavailable")
    log.exception("error serving %s %s", request.method, request.path)
    return error_response(request, 500, UNEXPECTED)


# -- parameters -----------------------------------------------------------------------------------------


class Params:
    """The request's parameters: query string, then the body (form or JSON) over it."""

    def __init__(self, request: HttpRequest) -> None:
        values: dict[str, list[Any]] = {k: request.GET.getlist(k) for k in request.GET}
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.body:
            kind = request.content_type or ""
            if kind == "application/json":
                try:
                    body = orjson.loads(request.body)
                except orjson.JSONDecodeError:
                    raise ApiError(400, "The request body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise ApiError(422, "The JSON body must be an object")
                for key, value in body.items():
                    values[key] = [value]  # a JSON list stays one value: only array parameters take it
            elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = request.POST if request.method == "POST" else QueryDict(request.body)
                for key in form:
                    values[key] = form.getlist(key)
        self.values = values

    def _all(self, name: str) -> list[Any] | None:
        """The values of a scalar parameter (a JSON list is refused by the readers below)."""
        for key in (name, f"{name}[]"):
            if key in self.values:
                return self.values[key]
        return None

    def _array(self, name: str) -> list[Any]:
        found = self._all(name) or []
        if len(found) == 1 and isinstance(found[0], list):
            return found[0]
        return found

    def text(self, name: str, default: str | None = None, max_length: int = 10_000) -> str | None:
        found = self._all(name)
        if not found:
            return default
        value = found[-1]
        if not isinstance(value, str):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise unprocessable(f"{name} must be a string")
            value = str(value)
        if len(value) > max_length:
            raise unprocessable(f"{name} is too long (at most {max_length} characters)")
        if "\x00" in value:  # no database stores it in text (PostgreSQL refuses it)
            raise unprocessable(f"{name} must not contain NUL characters")
        return value

    def required(self, name: str, max_length: int = 10_000) -> str:
        value = self.text(name, max_length=max_length)
        if value is None or not value.strip():
            raise unprocessable(f"{name} can't be blank")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        found = self._all(name)
        if not found:
            return default
        value = found[-1]
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "on", "yes"):
            return True
        if str(value).lower() in ("0", "false", "off", "no", ""):
            return False
        raise unprocessable(f"{name} must be a boolean")

    def words(self, name: str, most: int = 20) -> list[str]:
        found = self._array(name)
        if len(found) > most or not all(isinstance(w, str) and len(w) <= 40 for w in found):
            raise unprocessable(f"{name} must be at most {most} short strings")
        return found

    def ids(self, name: str = "id", most: int = 80) -> list[int]:
        found = self._array(name)
        if len(found) > most:
            raise unprocessable(f"at most {most} values of {name}")
        return [parse_id(value, name) for value in found]

    def optional_id(self, name: str) -> int | None:
        value = self.text(name)
        return None if value is None or value == "" else parse_id(value, name)

    def window(self) -> tuple[int | None, int | None, int | None]:
        """Mastodon's paging ids: ``(max_id, since_id, min_id)``, each None when absent."""
        return self.optional_id("max_id"), self.optional_id("since_id"), self.optional_id("min_id")

    def limit(self, default: int, most: int) -> int:
        """Mastodon's ``limit``: the default when absent, at most `most` (larger asks get `most`)."""
        value = self.text("limit")
        if value is None or value == "":
            return default
        if not value.isascii() or not value.isdigit() or len(value) > 18:
            raise unprocessable(NOT_A_LIMIT)
        number = int(value)
        if number < 1:
            raise unprocessable(NOT_A_LIMIT)
        return min(number, most)


def parse_id(value: object, name: str = "id") -> int:
    """An id given by a client: decimal digits, within int64. Anything else is refused."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        isinstance(text, str)
        and text.isascii()
        and text.isdigit()
        and len(text) <= 19
        and int(text) <= INT64_MAX
    ):
        return int(text)
    raise unprocessable(f"{name} must be an id (decimal digits)")


def path_id(value: str) -> int:
    """An id in the path: anything that is no id is a record that does not exist."""
    try:
        return parse_id(value)
    except ApiError:
        raise not_found() from None


# -- paging ---------------------------------------------------------------------------------------------


def link_header(request: HttpRequest, next_max_id: int | None, prev_min_id: int | None) -> dict[str, str]:
    """Mastodon's ``Link`` header: the next page (older, ``max_id``) and the previous (newer, ``min_id``),
    keeping the request's other query parameters."""
    kept = {k: v for k, v in request.GET.lists() if k not in ("max_id", "min_id", "since_id")}
    base = request.build_absolute_uri(request.path)
    links = []
    if next_max_id is not None:
        links.append(f'<{base}?{urlencode({**kept, "max_id": next_max_id}, doseq=True)}>; rel="next"')
    if prev_min_id is not None:
        links.append(f'<{base}?{urlencode({**kept, "min_id": prev_min_id}, doseq=True)}>; rel="prev"')
    return {"Link": ", ".join(links)} if links else {}
