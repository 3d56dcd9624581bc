"""Sensors of the code location."""
