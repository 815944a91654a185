"""URI templates of resources served by a worker, compiled once to a regular expression."""

from __future__ import annotations

import re


def compile_uri_template(template: str) -> re.Pattern[str]:
    """RFC 6570 level 1 (``{var}`` matches one path segment) plus ``{+var}`` (matches anything)."""
    parts: list[str] = []
    position = 0
    for match in re.finditer(r"\{(\+?)([A-Za-z0-9_]+)\}", template):
        parts.append(re.escape(template[position : match.start()]))
        reserved, name = match.groups()
        parts.append(f"(?P<{name}>.+)" if reserved else f"(?P<{name}>[^/?#]+)")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("^" + "".join(parts) + "$")
