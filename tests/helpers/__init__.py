"""Shared test helpers (plain functions and constants; fixtures live in conftest.py files)."""
