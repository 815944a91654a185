"""The Tasks extension of 2026-07-28 (``io.modelcontextprotocol/tasks``) for worker tools."""
