"""Reading a campaign file (YAML or JSON, items inline or as JSON lines) into a checked spec and
spool, naming the file, line and field of every fault."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.domain.campaigns import CampaignSpec
from core.domain.items import clean_loc
from core.errors import InvalidCampaign, Problem
from core.service.qualification import resolve_qualification
from core.service.staging import ItemSpool, spool_lines

Locate = Callable[[tuple[str | int, ...]], int | None]


def read_campaign(path: Path, items_path: Path | None = None,
                  progress: Callable[[int], None] | None = None) -> tuple[CampaignSpec, ItemSpool]:
    """Parse and check everything; raise InvalidCampaign before anything could be stored."""
    text = _read_text(path)
    data, locate = _parse(text, path.name)
    if not isinstance(data, dict):
        raise InvalidCampaign([Problem("a campaign file is a mapping of keys", source=path.name,
                                       line=1)])
    spec = resolve_qualification(_spec(data, path.name, locate), path.parent, path.name, locate)
    spool = ItemSpool(spec, path.name, base_dir=path.parent)  # image paths start beside it
    spool.locate = locate
    inline = data.get("items") or []
    if not isinstance(inline, list):
        spool.problems.append(Problem("`items` is a list", source=path.name,
                                      line=locate(("items",)), loc=("items",)))
        inline = []
    for index, item in enumerate(inline):
        spool.add(item, locate(("items", index)), ("items", index), locate)
    if items_path is not None:
        spool.source = items_path.name
        with items_path.open(encoding="utf-8") as lines:
            spool_lines(spool, lines, progress)
    spool.check()
    return spec, spool


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidCampaign([Problem(f"cannot read: {exc}", source=path.name)]) from exc


def _parse(text: str, source: str) -> tuple[Any, Locate]:
    """JSON when the file is JSON, YAML otherwise; YAML's node marks give lines for both."""
    if source.endswith(".json") or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidCampaign([Problem(f"invalid JSON: {exc.msg}", source=source,
                                           line=exc.lineno)]) from exc
        return data, _locator(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidCampaign([Problem(f"invalid YAML: {problem}", source=source,
                                       line=line)]) from exc
    return data, _locator(text)


def _spec(data: dict[str, Any], source: str, locate: Locate) -> CampaignSpec:
    fields = {key: value for key, value in data.items() if key != "items"}
    try:
        return CampaignSpec.model_validate(fields)
    except ValidationError as exc:
        problems = [Problem(error["msg"], source=source, loc=clean_loc(error["loc"]),
                            line=locate(clean_loc(error["loc"])) or 1) for error in exc.errors()]
        raise InvalidCampaign(problems) from exc


def _locator(text: str) -> Locate:
    """Map a field path such as ("items", 3, "drafts") to the line where it is written."""
    composed: list[yaml.Node | None] = []

    def locate(loc: tuple[str | int, ...]) -> int | None:
        if not composed:  # composing is slow on big files; only pay for it on an error
            try:
                composed.append(yaml.compose(text))
            except yaml.YAMLError:
                composed.append(None)
        node = composed[0]
        line = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            found = _child(node, part) if node is not None else None
            if found is None:
                break  # a missing field: report the line of the nearest enclosing one
            node, line = found
        return line

    return locate


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, int] | None:
    """The child node and its line; a mapping value's line is its key's, since a block value
    (`drafts:` followed by a list) starts on the next line, at its first entry."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value, key.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        child = node.value[part]
        return child, child.start_mark.line + 1
    return None
