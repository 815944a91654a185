"""Skillset sources: upstream MCP servers and OpenAPI documents whose listings join a skillset.

``openapi.py`` turns a document into tools, ``reader.py`` reads a source's listings (its catalog),
``assembly.py`` adds a source's catalog to the skillset snapshot the edge serves, ``checks.py`` holds
the input rules and limits, ``refresher.py`` refreshes sources periodically."""
