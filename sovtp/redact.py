"""Credentials out of everything sovtp writes or logs.

API keys normally come from the environment and never reach a run folder, but a server URL can
carry one itself: ``https://user:pass@host/v1`` or ``https://host/v1?api_key=...``.  Such a URL is
copied into ``config.yaml``, ``manifest.json``, ``request.json`` and log lines as-is unless it
passes through here first:

- :func:`redact_url` masks the userinfo (``***@``) and the values of credential-like query
  parameters (``api_key``, ``key``, ``token`` ...), keeping everything else byte for byte, so a
  redacted URL still says which server was asked;
- :func:`redact_text` does that to every URL inside a free text (an error message);
- :func:`redact` walks dicts, lists and tuples (what goes to JSON or YAML), redacting strings and
  masking values stored under credential-like keys (``api_key``, ``password`` ...);
- :class:`RedactingFilter` is a :class:`logging.Filter` for the CLI's handler: the formatted
  message and any traceback text are redacted before a handler writes them.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
# query parameters whose value is a credential (compared lower-cased, '-' read as '_')
SECRET_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth_token",
        "id_token",
        "refresh_token",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "sig",
        "signature",
    }
)
# mapping keys whose value is a credential whatever it looks like ("key" alone is too common a
# field name, e.g. a run row's key, to be masked as a mapping key)
SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "access_token",
        "auth_token",
        "token",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "authorization",
    }
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_TRAILING = ".,;:!?)]}"


def _norm(name: str) -> str:
    return unquote(name).strip().lower().replace("-", "_")


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        parts.append(f"{name}={MASK}" if eq and _norm(name) in SECRET_PARAMS else item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and credential query values masked; anything that is not a URL
    with a ``scheme://`` comes back unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = _redact_query(parts.query) if parts.query else parts.query
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing to hide: keep the exact spelling
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (see :func:`redact_url`)."""
    if "://" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        url = m.group(0)
        core = url.rstrip(_TRAILING)  # "(see http://h/x?token=t)." keeps its ")."
        return redact_url(core) + url[len(core) :]

    return _URL.sub(one, text)


def redact(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists and tuples walked) with credentials masked: URLs inside
    strings redacted, and the value under a credential-like key (``api_key``, ``password`` ...)
    replaced by ``***``.  Other values are returned as they are."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {
            k: (MASK if isinstance(k, str) and _norm(k) in SECRET_KEYS and v else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    return obj


class RedactingFilter(logging.Filter):
    """Redacts a log record in place: its formatted message (``msg % args``), its traceback and
    stack text.  Attach it to a handler so that every logger's records pass through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for logging to report
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True
