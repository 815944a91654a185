"""Usage at a glance: calls per tool, error rate and latency per MCP server over the last hour and day,
from the audit stream (``book`` keeps the figures, ``feed`` fills it, ``report`` shapes the answers)."""
