"""msgspec message types exchanged over NATS, one module per producing concern."""
