"""How theming names what it stores: a file- and table-name-safe spelling of a model."""

from __future__ import annotations

import re


def model_slug(model: str) -> str:
    """A file-name-safe spelling of an embedding model's name."""
    return re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")
