"""Request and response bodies, for FastAPI's OpenAPI document and its first checks.

Why many fields are ``Any`` under a declared schema (``WithJsonSchema``): ``LocalIndex`` validates vectors,
metadata, filters and arguments itself and raises the precise class (``InvalidVector``, ``DimensionMismatch``,
``InvalidFilter``...). Letting pydantic coerce or reject those first would change the error class a remote caller
sees (``"3"`` would become ``top_k=3``), so the document says what is valid and ``LocalIndex`` decides.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

Vector = Annotated[
    Any,
    WithJsonSchema({"type": "array", "items": {"type": "number"}, "description": "dims finite numbers, not all zero"}),
]
MaybeVector = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "null"}],
            "description": "dims finite numbers, not all zero; null: embed text with the server's model",
        }
    ),
]
Metadata = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "object"}, {"type": "null"}]})]
Filter = Annotated[
    Any, WithJsonSchema({"anyOf": [{"type": "object"}, {"type": "null"}], "description": "MongoDB-style filter"})
]
Text = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]})]
ItemId = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1, "maxLength": 512}]})]
OptionalId = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "null"}]})]
Number = Annotated[Any, WithJsonSchema({"type": "number"})]
OptionalNumber = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"}]})]
Integer = Annotated[Any, WithJsonSchema({"type": "integer"})]
OptionalInteger = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "null"}]})]
JSONValue = Annotated[Any, WithJsonSchema({})]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a mistake worth a 422, not silence


# ----------------------------------------------------------------------------------------------- requests


class CreateIndex(Body):
    name: Annotated[str, Field(description="1-100 of A-Z a-z 0-9 . _ -, starting with a letter or digit")]
    dims: OptionalInteger = None
    metric: Annotated[Any, WithJsonSchema({"type": "string", "enum": ["cosine"]})] = "cosine"
    indexed: Annotated[Any, WithJsonSchema({"type": "array", "items": {"type": "string"}})] = []
    exist_ok: bool = False
    embed: Annotated[bool, Field(description="embed text with the server's model (sets dims)")] = False
    bm25_k1: Number = 0.9
    bm25_b: Number = 0.4


class NewItem(Body):
    vector: MaybeVector = None
    metadata: Metadata = None
    text: Text = None
    id: OptionalId = None


class ItemBody(Body):
    vector: MaybeVector = None
    metadata: Metadata = None
    text: Text = None


class ItemsBody(Body):
    items: Annotated[Any, WithJsonSchema({"type": "array", "items": {"$ref": "#/components/schemas/NewItem"}})]


class MetadataBody(Body):
    metadata: Annotated[Any, WithJsonSchema({"type": "object"})]


class IdsBody(Body):
    ids: Annotated[Any, WithJsonSchema({"type": "array", "items": {"type": "string"}})]


class FilterBody(Body):
    filter: Filter = None


class RequiredFilterBody(Body):
    filter: Annotated[Any, WithJsonSchema({"type": "object", "description": "MongoDB-style filter"})]


class ListBody(Body):
    filter: Filter = None
    limit: OptionalInteger = None
    offset: Integer = 0


class DistinctBody(Body):
    field: Annotated[str, Field(description="a dotted metadata path")]


F32 = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "format": "byte"}, {"type": "null"}],
            "description": "the query vector as base64 of little-endian float32 (instead of vector): exact, and "
            "much cheaper to read than a JSON list of numbers",
        }
    ),
]


class QueryBody(Body):
    vector: MaybeVector = None
    vector_f32: F32 = None
    text: Text = None
    top_k: Integer = 10
    filter: Filter = None
    mode: Annotated[Any, WithJsonSchema({"type": "string", "enum": ["auto", "vector", "keyword", "hybrid"]})] = "auto"
    min_score: OptionalNumber = None
    fusion: Annotated[Any, WithJsonSchema({"type": "string", "enum": ["rrf", "weighted"]})] = "rrf"
    weights: Annotated[Any, WithJsonSchema({"type": "array", "items": {"type": "number"}})] = None
    rrf_k: OptionalNumber = None
    expand_abbreviations: Annotated[
        Any, WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "string"}, {"type": "null"}]})
    ] = None
    exact: Annotated[
        Any, WithJsonSchema({"type": "boolean", "description": "scan every (filtered) row, never the IVF probe"})
    ] = False
    nprobe: Annotated[
        Any,
        WithJsonSchema(
            {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "description": "IVF lists to probe"}
        ),
    ] = None


class DocumentBody(Body):
    uri: Annotated[str, Field(min_length=1)]
    text: str
    metadata: Metadata = None


class DocumentQueryBody(Body):
    text: str
    top_k: Integer = 5
    filter: Filter = None
    mode: Annotated[Any, WithJsonSchema({"type": "string", "enum": ["auto", "vector", "keyword", "hybrid"]})] = "auto"
    group: Annotated[Any, WithJsonSchema({"type": "string", "enum": ["max", "mean"]})] = "max"
    passages: Integer = 3


# ----------------------------------------------------------------------------------------------- responses


class ErrorBody(BaseModel):
    error: Annotated[str, Field(description="the exception class name, e.g. DuplicateId")]
    message: str


class WireItem(BaseModel):
    id: str
    vector: Annotated[str, Field(description="base64 of the little-endian float32 vector")]
    metadata: dict[str, JSONValue]
    text: str | None


class WireResult(BaseModel):
    item: WireItem
    score: float
    vector_score: float | None
    keyword_score: float | None


class IndexNames(BaseModel):
    indexes: list[str]


class IndexInfo(BaseModel):
    name: str
    manifest: dict[str, JSONValue]


class IdOut(BaseModel):
    id: str


class IdsOut(BaseModel):
    ids: list[str]


class DeletedOut(BaseModel):
    deleted: int


class ExistedOut(BaseModel):
    deleted: bool


class ItemsOut(BaseModel):
    items: list[WireItem]


class CountOut(BaseModel):
    count: int


class ValuesOut(BaseModel):
    values: list[JSONValue]


class ResultsOut(BaseModel):
    results: list[WireResult]


class StatsOut(BaseModel):
    stats: dict[str, JSONValue]


class OkOut(BaseModel):
    ok: bool


class UpdateOut(BaseModel):
    update: str


class DocumentOut(BaseModel):
    uri: str
    text: str
    metadata: dict[str, JSONValue]
    chunks: int


class DocumentInfoOut(BaseModel):
    uri: str
    metadata: dict[str, JSONValue]
    chunks: int
    hash: str
    preview: str


class DocumentsOut(BaseModel):
    documents: list[DocumentInfoOut]


class ChangedOut(BaseModel):
    changed: bool


class PassageOut(BaseModel):
    text: str
    start: int
    end: int
    score: float
    chunk: int
    vector_score: float | None
    keyword_score: float | None


class DocumentResultOut(BaseModel):
    uri: str
    score: float
    metadata: dict[str, JSONValue]
    passages: list[PassageOut]
    chunks: int


class DocumentResultsOut(BaseModel):
    results: list[DocumentResultOut]
