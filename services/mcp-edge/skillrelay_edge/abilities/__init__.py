"""Ability runners by handler kind. ``worker`` is provided by ``abilities/worker.py`` when present."""
