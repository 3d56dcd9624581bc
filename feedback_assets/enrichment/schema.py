"""The classification contract: the strict JSON the LLM must return, and the row every item ends as."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from feedback_assets.enrichment.taxonomy import Taxonomy


# Model output is validated strictly: no "0.99" for a number, no "yes" for a boolean, no extra keys.
STRICT = ConfigDict(extra="forbid", strict=True)


class Entities(BaseModel):
    model_config = STRICT

    sku: str | None
    variant: str | None
    region: str | None
    carrier: str | None
    shipping_method: str | None
    order_id: str | None



def label_literal(taxonomy: Taxonomy) -> Any:
    """The label ids of the taxonomy as a Literal type: the only values a classification may name."""
    return Literal[tuple(taxonomy.label_ids)]


class _ItemChecks(BaseModel):
    """Rules across fields of one answer: each label at most once, and the primary one among them."""

    model_config = STRICT

    @model_validator(mode="after")
    def _consistent_labels(self) -> _ItemChecks:
        named = [assignment.label for assignment in self.labels]  # type: ignore[attr-defined]
        if len(set(named)) != len(named):
            raise ValueError("a label is listed more than once")
        if self.primary_label not in named:  # type: ignore[attr-defined]
            raise ValueError("primary_label is not one of the labels")
        return self


_MODELS_BY_VERSION: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {}


def response_models(taxonomy: Taxonomy) -> tuple[type[BaseModel], type[BaseModel]]:
    """(ItemResult, BatchResult) pydantic models whose labels are the taxonomy enum (built once per version)."""
    if taxonomy.version not in _MODELS_BY_VERSION:
        _MODELS_BY_VERSION[taxonomy.version] = _build_models(taxonomy)
    return _MODELS_BY_VERSION[taxonomy.version]


def _build_models(taxonomy: Taxonomy) -> tuple[type[BaseModel], type[BaseModel]]:
    labels = label_literal(taxonomy)
    assignment = create_model(
        "LabelAssignment",
        __config__=STRICT,
        label=(labels, ...),
        severity=(float, Field(ge=0, le=1)),
        evidence=(str, Field(description="a short verbatim quote from the feedback")),
    )
    item = create_model(
        "ItemResult",
        __base__=_ItemChecks,
        id=(str, ...),
        labels=(list[assignment], Field(min_length=1)),
        primary_label=(labels, ...),
        sentiment=(float, Field(ge=-1, le=1)),
        churn_intent=(bool, ...),
        entities=(Entities, ...),
        summary=(str, ...),
        confidence=(float, Field(ge=0, le=1)),
    )
    batch = create_model("BatchResult", __config__=STRICT, items=(list[item], ...))
    return item, batch


def strict_json_schema(taxonomy: Taxonomy) -> dict[str, Any]:
    """The BatchResult schema in OpenAI structured-outputs strict form."""
    from openai.lib._pydantic import to_strict_json_schema

    return to_strict_json_schema(response_models(taxonomy)[1])

