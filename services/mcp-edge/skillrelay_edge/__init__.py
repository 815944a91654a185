"""Skillrelay edge service."""
