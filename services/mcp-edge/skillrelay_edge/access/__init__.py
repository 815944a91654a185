"""Who is calling: credential verification and the OAuth protected-resource metadata."""
