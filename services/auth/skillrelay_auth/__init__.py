"""Skillrelay auth service."""
