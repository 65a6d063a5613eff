"""Optional API key, accepted where Kyutai's servers and clients put it.

Header `kyutai-api-key` or `Authorization: Bearer <key>`, or query parameter `auth_id`
(browsers cannot set headers on websockets). Compared in constant time.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping

HEADER = "kyutai-api-key"
QUERY = "auth_id"


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    return headers.get(HEADER) or query.get(QUERY)


def is_authorized(api_key: str | None, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    if api_key is None:
        return True
    key = presented_key(headers, query)
    return key is not None and secrets.compare_digest(key.encode(), api_key.encode())


def auth_hint() -> str:
    return f"send the API key in the '{HEADER}' header, as 'Authorization: Bearer <key>', or as the '{QUERY}' query parameter"


class RedactKeys(logging.Filter):
    """Masks the `auth_id` query parameter in log records (uvicorn writes request paths, query
    included, into its access and websocket lines): keys never reach a log."""

    _PATTERN = re.compile(rf"([?&]{QUERY}=)[^&\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._PATTERN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self._PATTERN.sub(r"\1***", record.msg)
        return True


def redact_keys_in_logs() -> None:
    """Installs `RedactKeys` on uvicorn's loggers, once."""
    for name in ("uvicorn.access", "uvicorn.error"):
        log = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in log.filters):
            log.addFilter(RedactKeys())
