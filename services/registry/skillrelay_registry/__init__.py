"""Skillrelay registry service."""
