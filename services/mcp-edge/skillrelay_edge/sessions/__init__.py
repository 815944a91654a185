"""The edge's view of MCP sessions and the notifications sent on their GET streams."""
