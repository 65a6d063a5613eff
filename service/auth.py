"""Optional API key, accepted where Kyutai's servers and clients put it.

Header `kyutai-api-key` or `Authorization: Bearer <key>`, or query parameter `auth_id`
(browsers cannot set headers on websockets). Compared in constant time.
"""

from __future__ import annotations

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
