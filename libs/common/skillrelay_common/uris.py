"""What counts as an absolute URI (RFC 3986: a scheme, then only URI characters with well-formed
percent-escapes). One definition for the registry, which checks what is stored, and the edge, which
checks what substitution produced."""

from __future__ import annotations

import re

_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_URI_CHARACTERS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_absolute_uri(value: str) -> bool:
    return bool(_ABSOLUTE_URI.fullmatch(value)) and not _BAD_PERCENT.search(value)


def has_only_uri_characters(value: str) -> bool:
    """For the literal parts around a placeholder: nothing a URI may not hold (the scheme may come from
    the placeholder)."""
    return bool(_URI_CHARACTERS.fullmatch(value)) and not _BAD_PERCENT.search(value)
