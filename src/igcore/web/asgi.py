"""The ASGI entry point: ``uvicorn igcore.web.asgi:application``. Django serves HTTP; the lifespan
messages (which Django does not handle) start and stop the worker's runtime (``igcore.web.worker``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "igcore.web.settings")

import django  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

django.setup(set_prefix=False)  # the models can be imported from here on


class Handler(ASGIHandler):
    """Django's ASGI handler without its per-request ``ThreadSensitiveContext``.

    Inside that context each request gets a thread of its own for its synchronous parts (Django's
    signals, the response's ``close``): a thread started and joined per request, and with it a database
    connection opened and closed per request. The views run their queries in the worker's thread pool
    (``Worker.db``), whose threads keep their connections; what Django still runs synchronously goes to
    asgiref's one long-lived thread."""

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            raise ValueError(f"this handler serves HTTP, not {scope['type']}")
        await self.handle(scope, receive, send)


django_application = Handler()

from .worker import lifespan  # noqa: E402


async def application(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await django_application(scope, receive, send)
