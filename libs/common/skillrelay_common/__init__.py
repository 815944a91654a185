"""Code shared by every Skillrelay service: settings, logging, message contract, NATS and DB helpers."""
