"""The integration cache: snapshots fed by registry events and the per-snapshot catalog."""
