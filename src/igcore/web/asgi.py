"""The ASGI entry point: ``uvicorn igcore.web.asgi:application``. Django serves HTTP; the lifespan
messages (which Django does not handle) start and stop the worker's runtime (``igcore.web.worker``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "igcore.web.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()  # sets Django up: the models can be imported from here on

from .worker import lifespan  # noqa: E402


async def application(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await django_application(scope, receive, send)
