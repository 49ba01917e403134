"""What the four full-stack sites share: settings, the data, and the small security helpers.

Every site reads its database and secret from the environment the runner sets
(``FULLSTACK_DATABASE_URL``, ``FULLSTACK_SECRET``), renders the same Jinja2
templates (``templates/``) and answers the same endpoints:

- ``GET /fs/page``: the logged-in user's 20 newest notes, with their count,
  rendered into HTML with a CSRF input in the form;
- ``GET /fs/notes.json``: the same 20 notes as a JSON list;
- ``POST /fs/notes``: a form (CSRF token, title, body) that inserts one note
  and answers ``303`` to ``/fs/page``;
- ``/login`` (covet, the scaffold's own) or ``/fs/login``: log in with email
  and password; used once per run to get the session cookie.

Sessions are server-side in every site (one row per session, looked up on each
request, as ``covet new`` and Django do by default), the user is loaded from
the database on each request, the CSRF secret lives in the session, and the
same security headers go out. The helpers below are what the Starlette and
hand-written sites use for that; covet and Django use their own.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

#: The users every site is seeded with: the reader owns NOTES notes and is the one
#: the page and JSON endpoints are loaded as; the writer is the one the POST load
#: logs in as, so the reader's count and page stay the same however many notes
#: the POST load writes.
READER = "reader@example.com"
WRITER = "writer@example.com"
PASSWORD = "full-stack-benchmark-1"
NOTES = 25
PAGE_SIZE = 20
SESSION_AGE = 14 * 24 * 3600
SESSION_COOKIE = "session"
CSRF_FIELD = "csrf_token"
#: The headers covet's SecurityHeadersMiddleware sends by default over plain HTTP.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def database_url() -> str:
    """Return the database URL the runner chose (``sqlite:///…`` or ``postgresql://…``)."""
    return os.environ["FULLSTACK_DATABASE_URL"]


def secret_key() -> str:
    """Return the secret key the runner chose for this run."""
    return os.environ["FULLSTACK_SECRET"]


def postgres_parts(url: str) -> tuple[str, str | None]:
    """Split ``postgresql://…?search_path=S`` into the plain URL and the schema."""
    parts = urlsplit(url)
    schema = None
    for item in parts.query.split("&"):
        key, _, value = item.partition("=")
        if key == "search_path":
            schema = unquote(value)
    return parts._replace(query="").geturl(), schema


def sqlite_path(url: str) -> str:
    """Return the file of a ``sqlite:///path`` URL."""
    return url.removeprefix("sqlite:///")


def serializer() -> URLSafeTimedSerializer:
    """Return the cookie signer: itsdangerous, as covet's SessionMiddleware uses."""
    return URLSafeTimedSerializer(secret_key(), salt="fullstack.session")


def cookie_value(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    """Return the value of cookie ``name`` in an ASGI header list."""
    for key, value in headers:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie = part.strip().partition("=")
                if cookie_name == name:
                    return cookie
    return None


def session_key_from_cookie(signer: URLSafeTimedSerializer, raw: str | None) -> str | None:
    """Return the session id a signed cookie names, or None (absent, tampered, too old)."""
    if not raw:
        return None
    try:
        key = signer.loads(raw, max_age=SESSION_AGE)
    except BadSignature:
        return None
    return key if isinstance(key, str) and len(key) <= 64 else None


def new_session(user_id: int) -> tuple[str, dict[str, Any]]:
    """Return a new session id and its data: the user and a fresh CSRF secret."""
    return secrets.token_urlsafe(32), {
        "user_id": user_id,
        "csrf": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


def encode_session(data: dict[str, Any]) -> str:
    """Return the session data as stored (JSON text)."""
    return json.dumps(data)


def decode_session(text: str) -> dict[str, Any]:
    """Return the stored session data (an empty dict for anything unreadable)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def mask_token(secret: str) -> str:
    """Return a fresh masked CSRF token for ``secret`` (Django's BREACH mitigation)."""
    raw = base64.urlsafe_b64decode(secret)
    pad = secrets.token_bytes(len(raw))
    return base64.urlsafe_b64encode(
        pad + bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    ).decode()


def token_matches(secret: str, token: str) -> bool:
    """Return whether a masked ``token`` was made from ``secret``."""
    try:
        raw = base64.urlsafe_b64decode(secret)
        data = base64.urlsafe_b64decode(token)
    except ValueError:
        return False
    if len(data) != 2 * len(raw):
        return False
    pad, masked = data[: len(raw)], data[len(raw) :]
    return hmac.compare_digest(bytes(a ^ b for a, b in zip(masked, pad, strict=True)), raw)


def csrf_input(token: str) -> str:
    """Return the hidden form input carrying ``token`` (HTML-safe: the token is base64)."""
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{token}">'


def utc_now() -> datetime.datetime:
    """Return the current time, timezone-aware."""
    return datetime.datetime.now(datetime.UTC)


def note_dict(note_id: int, title: str, body: str, created_at: datetime.datetime) -> dict[str, Any]:
    """Return a note as the JSON endpoint sends it (the scaffold's ``Note.to_dict()``)."""
    return {"id": note_id, "title": title, "body": body, "created_at": created_at.isoformat()}


def seed_notes(count: int = NOTES) -> list[tuple[str, str, datetime.datetime]]:
    """Return the reader's notes: (title, body, created_at), oldest first, a minute apart."""
    start = utc_now() - datetime.timedelta(days=1)
    return [
        (
            f"Note number {index} & <friends>",
            f"The body of note {index}, with a few words so the page has text to escape.",
            start + datetime.timedelta(minutes=index),
        )
        for index in range(count)
    ]
