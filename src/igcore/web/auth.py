"""Bearer tokens, apps and passwords.

A token is 32 random bytes (url-safe base64); the database keeps only its sha256 (``Token.digest``), so a
leaked table gives no working token. Workers cache ``digest -> account`` in Redis (see
``igcore.web.keys``); revoking a token deletes the row and the cached entry.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone

from .models import Application, Token

DEFAULT_SCOPES = "read write follow"


class PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 hasher; ``IGCORE_WEB_PASSWORD_ITERATIONS`` may lower its cost (for tests only)."""

    algorithm = "pbkdf2_sha256"

    def __init__(self) -> None:
        configured = getattr(settings, "IGCORE_PASSWORD_ITERATIONS", None)
        if configured:
            self.iterations = configured


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    account_id: int | None, application: Application | None = None, scopes: str = DEFAULT_SCOPES
) -> str:
    """A new bearer token for the account (None: an app's client-credentials token); returns the token."""
    token = secrets.token_urlsafe(32)
    Token.objects.create(
        digest=digest(token),
        account_id=account_id,
        application=application,
        scopes=scopes,
        created_at=timezone.now(),
    )
    return token


def create_application(
    name: str, redirect_uri: str, scopes: str, website: str | None
) -> tuple[Application, str]:
    """A registered client app and its secret (shown once, stored as a digest)."""
    secret = secrets.token_urlsafe(32)
    app = Application.objects.create(
        name=name,
        website=website,
        redirect_uri=redirect_uri,
        scopes=scopes,
        client_id=secrets.token_urlsafe(32),
        client_secret_digest=digest(secret),
        created_at=timezone.now(),
    )
    return app, secret
