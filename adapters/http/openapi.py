"""The OpenAPI document of the coordinator API, built from the same route table the app uses
and the pydantic models' own JSON schemas, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from core.domain.asks import AskRequest, AskView
from core.domain.campaigns import CampaignSpec, CampaignStatus
from core.domain.experts import Expert
from core.domain.items import Item
from core.reports.models import ModelsReport

ERROR = {"type": "object", "required": ["error", "detail"], "properties": {
    "error": {"type": "string"},
    "detail": {"type": "array", "items": {"type": "object", "properties": {
        "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
        "msg": {"type": "string"}}, "required": ["loc", "msg"]}}}}
OBJECT = {"type": "object"}
ADJUDICATE = {"type": "object", "required": ["item"], "properties": {"item": {
    "type": "string", "description": "the item's id"}}}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def components() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR}
    for model in (CampaignSpec, CampaignStatus, Expert, Item, ModelsReport, AskRequest, AskView):
        schema = _schema(model)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    post = dict(schemas["CampaignSpec"])
    post["properties"] = {**post["properties"], "items": {
        "type": "array", "items": {"$ref": "#/components/schemas/Item"}}}
    schemas["CampaignPost"] = post
    schemas["Adjudicate"] = ADJUDICATE
    schemas["ExpertUpdate"] = expert_update(schemas["Expert"])
    return schemas


def expert_update(expert: dict[str, Any]) -> dict[str, Any]:
    """PATCH /api/experts/{id}: any of the profile's fields but the id and linked accounts."""
    fields = {name: field for name, field in expert["properties"].items()
              if name not in ("id", "identities")}
    return {"type": "object", "title": "ExpertUpdate", "properties": fields,
            "additionalProperties": False, "minProperties": 1}


def operation(summary: str, *, body: str | None = None, body_type: str = "application/json",
              ok: int = 200, returns: dict[str, Any] | None = None,
              params: list[dict[str, Any]] | None = None,
              media: tuple[str, ...] = ("application/json",),
              also: dict[int, str] | None = None) -> dict[str, Any]:
    """`media`: the content types a success may come in (exports stream JSON lines or CSV);
    `also`: more responses a route gives (another success, a 429)."""
    op: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": {
        str(ok): {"description": "OK", "content": {
            kind: {"schema": (returns or OBJECT) if kind == "application/json"
                   else {"type": "string"}}
            for kind in media}},
        **{str(code): {"description": why, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
           for code, why in ((400, "bad request"), (401, "no or wrong token"),
                             (404, "unknown id"), (409, "conflict"), (413, "body too large"),
                             (422, "invalid body"))},
        **{str(code): {"description": why} for code, why in (also or {}).items()}}}
    if body is not None:
        schema = {"$ref": f"#/components/schemas/{body}"} if body_type.endswith("json") \
            else {"type": "string"}
        op["requestBody"] = {"required": True, "content": {body_type: {"schema": schema}}}
    return op


def document(paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"openapi": "3.1.0",
            "info": {"title": "expertloop coordinator API", "version": "1"},
            "components": {"schemas": components(), "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": paths}
