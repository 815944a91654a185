"""The "everything" example worker: every tool, resource and prompt the official MCP conformance suite
(``@modelcontextprotocol/conformance``) asks a server for, served by Skillrelay.

- ``python -m everything_worker`` runs the worker (NATS from ``SKILLRELAY_NATS_URL``).
- ``python -m everything_worker.register`` creates a user, the skillset and an MCP server integration
  through the REST API and prints the endpoint and its token.
"""
