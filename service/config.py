"""Service settings: authentication and the limits that protect the shared model batch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceConfig:
    api_key: str | None = None  # None: no authentication
    max_message_bytes: int = 1 << 20  # one websocket message; an 80 ms PCM16 frame is 3840 bytes
    max_session_s: float = 3600.0  # seconds of input audio per session
    idle_timeout_s: float = 10.0  # a session that sends no audio for this long is closed (its slot freed)
    max_upload_bytes: int = 64 << 20  # POST /v1/translate
    queue_timeout_s: float = 0.0  # how long a session may wait for a busy batch's slot (0: refused at once)
    retry_after_s: int = 2  # advertised to clients refused for lack of a free slot

    @property
    def ws_max_size(self) -> int:
        """uvicorn's own cap on a websocket message: above ours, so that a message past our
        limit gets our error message; past this one uvicorn closes with 1009 before we see it."""
        return 4 * self.max_message_bytes
