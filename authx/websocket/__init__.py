"""WebSocket authentication: token transports, rejection and live sessions."""
