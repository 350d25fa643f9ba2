"""Market data: the protocol, the WebSocket client, the synthetic market and its server, replay."""
