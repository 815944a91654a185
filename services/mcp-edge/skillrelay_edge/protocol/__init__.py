"""MCP methods, one module per family; ``dispatcher.py`` routes a request to its handler."""
