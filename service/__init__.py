"""The streaming translation service (Kyutai websocket protocol and our own API)."""
