"""Themes: complaints embedded, clustered per (label, group) and named, stable across days through a registry."""
