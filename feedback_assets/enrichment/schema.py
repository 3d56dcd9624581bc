"""The classification contract: the strict JSON the LLM must return, and the row every item ends as."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from feedback_assets.enrichment.taxonomy import Taxonomy


class Entities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str | None
    variant: str | None
    region: str | None
    carrier: str | None
    shipping_method: str | None
    order_id: str | None



def label_enum(taxonomy: Taxonomy) -> type[StrEnum]:
    """The label ids of the taxonomy as an enum: the only values a classification may name."""
    return StrEnum("Label", {label_id: label_id for label_id in taxonomy.label_ids})


_MODELS_BY_VERSION: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {}


def response_models(taxonomy: Taxonomy) -> tuple[type[BaseModel], type[BaseModel]]:
    """(ItemResult, BatchResult) pydantic models whose labels are the taxonomy enum (built once per version)."""
    if taxonomy.version not in _MODELS_BY_VERSION:
        _MODELS_BY_VERSION[taxonomy.version] = _build_models(taxonomy)
    return _MODELS_BY_VERSION[taxonomy.version]


def _build_models(taxonomy: Taxonomy) -> tuple[type[BaseModel], type[BaseModel]]:
    labels = label_enum(taxonomy)
    assignment = create_model(
        "LabelAssignment",
        __config__=ConfigDict(extra="forbid"),
        label=(labels, ...),
        severity=(float, Field(ge=0, le=1)),
        evidence=(str, Field(description="a short verbatim quote from the feedback")),
    )
    item = create_model(
        "ItemResult",
        __config__=ConfigDict(extra="forbid"),
        id=(str, ...),
        labels=(list[assignment], Field(min_length=1)),
        primary_label=(labels, ...),
        sentiment=(float, Field(ge=-1, le=1)),
        churn_intent=(bool, ...),
        entities=(Entities, ...),
        summary=(str, ...),
        confidence=(float, Field(ge=0, le=1)),
    )
    batch = create_model("BatchResult", __config__=ConfigDict(extra="forbid"), items=(list[item], ...))
    return item, batch


def strict_json_schema(taxonomy: Taxonomy) -> dict[str, Any]:
    """The BatchResult schema in OpenAI structured-outputs strict form."""
    from openai.lib._pydantic import to_strict_json_schema

    return to_strict_json_schema(response_models(taxonomy)[1])

