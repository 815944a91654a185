"""Skillrelay: the launcher and command line for the whole stack."""
