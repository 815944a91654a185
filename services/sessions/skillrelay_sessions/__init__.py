"""Skillrelay sessions service: MCP sessions with sliding expiry, over NATS only."""
