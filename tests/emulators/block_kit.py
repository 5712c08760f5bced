"""What Slack refuses in Block Kit, as plain functions: the emulator runs every blocks payload
through them, and the property tests call the same code on every card and modal we render.

Each refusal is a line the way Slack words it in `errors` of an `invalid_blocks` answer: a
message and the json-pointer of the field at fault. The rules, and where they are documented:

- Every block through slack_sdk's own models, `Block.parse(block).to_dict()` (to_dict runs the
  nested elements' validators too; validate_json checks only the object itself), every view
  through `View(**view).to_dict()`. A `parse()` giving None (an unknown block or element type)
  is a refusal. slack_sdk 3.48 checks, among others: a button's text at most 75 characters and
  its value 2000; an option's text 75 and value 150; a select at most 100 options; an overflow
  menu 2 to 5 options; an actions block 25 elements; a context block 10 elements; a section's
  text 3000; a placeholder 150; an input's label 2000; action_id and block_id 255; a view's
  title, submit and close 24, private_metadata 3000, callback_id 255, 1 to 100 blocks
  (https://docs.slack.dev/reference/block-kit/blocks, .../block-elements,
  .../composition-objects, https://docs.slack.dev/reference/views).
- At most 50 blocks in a message, 100 in a modal or Home tab
  (https://docs.slack.dev/reference/block-kit/blocks).
- An action_id is unique among the action_ids of its block ("Should be unique among all other
  action_ids in the containing block", every interactive element's reference; Slack answers
  `duplicate action_id`).
- A block_id is unique within a message or view ("block_id should be unique for each message
  and each iteration of a message", every block's reference).
- A text object holds 1 to 3000 characters, wherever it is, a context element included; a
  button's or option's text at most 75 (https://docs.slack.dev/reference/block-kit/composition-objects/text-object).
- An overflow menu holds at most 5 options
  (https://docs.slack.dev/reference/block-kit/block-elements/overflow-menu-element).
- A plain_text_input's max_length and initial_value at most 3000 characters
  (https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element).
- An image block or element has alt text ("Required", 1 to 2000 characters) and exactly one of
  image_url and slack_file; a slack_file names its file by exactly one of id and url ("If both
  are provided then the payload will be rejected"), an id matching `^[F][A-Z0-9]{8,}$`
  (https://docs.slack.dev/reference/block-kit/blocks/image-block, .../block-elements/image-element,
  .../composition-objects/slack-file-object; the regex is Slack's own refusal's, in
  slackapi/python-slack-sdk#1521). Whether the file exists and is ready is the emulator's to
  say (tests/emulators/slack_files.py), since only it knows its files.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, BlockElement
from slack_sdk.models.views import View

Json = dict[str, Any]
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
TEXT_MOST = 3000
LABEL_MOST = 75  # a button's or an option's text
OVERFLOW_OPTIONS = 5
INPUT_MOST = 3000
CHILDREN = ("elements", "element", "accessory")  # where a block holds its elements
FILE_ID = re.compile(r"^[F][A-Z0-9]{8,}$")


def refusals_of_message(blocks: list[Json]) -> list[str]:
    """Why Slack would refuse a message with these blocks; empty when it would take it."""
    return _refusals_of_blocks(blocks, "/blocks", MESSAGE_BLOCKS)


def refusals_of_view(view: Json) -> list[str]:
    """Why Slack would refuse this modal or Home tab; empty when it would take it."""
    blocks = view.get("blocks") or []
    errors = _refusals_of_blocks(blocks, "/view/blocks", VIEW_BLOCKS)

    def whole() -> object:
        """The whole view; only its own fields when its blocks were refused already, so
        nothing is told twice."""
        made = View(**view)
        return made.validate_json() if errors else made.to_dict()

    return errors + _model_refusals(whole, "/view")


def _refusals_of_blocks(blocks: list[Json], at: str, most: int) -> list[str]:
    errors = [] if len(blocks) <= most else [
        f"no more than {most} items allowed [json-pointer:{at}]"]
    errors += _duplicates([b.get("block_id") for b in blocks], "block_id", at, "/block_id")
    for n, block in enumerate(blocks):
        errors += _refusals_of_block(block, f"{at}/{n}")
    return errors


def _refusals_of_block(block: Json, at: str) -> list[str]:
    images = image_refusals(block, at)
    if images:  # slack_sdk's models cannot even be built without alt_text
        return images
    if Block.parse(block) is None:
        return [f"unsupported block type: {block.get('type')} [json-pointer:{at}/type]"]
    errors = _element_refusals(block, at)
    if not errors:  # the block as a whole, once its elements are known good
        errors = _model_refusals(lambda: Block.parse(block).to_dict(), at)  # type: ignore[union-attr]
    if block.get("type") == "actions":
        ids = [e.get("action_id") for e in block.get("elements", [])]
        errors += _duplicates(ids, "action_id", f"{at}/elements", "/action_id")
    return errors + _limits(block, at)


def _element_refusals(block: Json, at: str) -> list[str]:
    """The interactive elements one by one, so a refusal points at the element at fault."""
    errors: list[str] = []
    for name in CHILDREN:
        held = block.get(name)
        if name == "elements" and block.get("type") != "actions" or held is None:
            continue
        for path, element in _listed(held, f"{at}/{name}"):
            parsed = BlockElement.parse(element)
            if parsed is None:
                errors.append(f"unsupported element type: {element.get('type')} "
                              f"[json-pointer:{path}/type]")
            else:
                errors += _model_refusals(parsed.to_dict, path)
    return errors


def _listed(held: Any, at: str) -> list[tuple[str, Json]]:
    if isinstance(held, list):
        return [(f"{at}/{n}", element) for n, element in enumerate(held)]
    return [(at, held)]


def _model_refusals(check: Callable[[], object], at: str) -> list[str]:
    """slack_sdk's own verdict, in Slack's shape: its SlackObjectFormationError (or a field its
    constructors could not take at all) becomes a refusal at `at`."""
    try:
        check()
    except SlackObjectFormationError as exc:
        return [f"{exc} [json-pointer:{at}]"]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return [f"invalid object: {exc} [json-pointer:{at}]"]
    return []


def _duplicates(ids: list[Any], name: str, at: str, tail: str) -> list[str]:
    seen = Counter(i for i in ids if i is not None)
    return [f"duplicate {name} [json-pointer:{at}/{n}{tail}]"
            for n, i in enumerate(ids) if i is not None and seen[i] > 1 and ids.index(i) < n]


def _limits(node: Any, at: str) -> list[str]:
    """The documented limits slack_sdk leaves unchecked, anywhere in the tree."""
    if isinstance(node, list):
        return [e for n, child in enumerate(node) for e in _limits(child, f"{at}/{n}")]
    if not isinstance(node, dict):
        return []
    errors = _node_limits(node, at)
    for name, child in node.items():
        if isinstance(child, dict | list):
            errors += _limits(child, f"{at}/{name}")
    return errors


def _node_limits(node: Json, at: str) -> list[str]:
    kind, errors = node.get("type"), []
    if kind in ("plain_text", "mrkdwn"):
        text = str(node.get("text", ""))
        short = at.endswith("/text") and "/elements/" in at  # a button's or an option's text
        most = LABEL_MOST if short else TEXT_MOST
        if not 1 <= len(text) <= most:
            errors.append(f"must be between 1 and {most} characters [json-pointer:{at}/text]")
    if kind == "overflow" and len(node.get("options", [])) > OVERFLOW_OPTIONS:
        errors.append(f"no more than {OVERFLOW_OPTIONS} items allowed "
                      f"[json-pointer:{at}/options]")
    if kind == "plain_text_input":
        if int(node.get("max_length", 0)) > INPUT_MOST:
            errors.append(f"must be at most {INPUT_MOST} [json-pointer:{at}/max_length]")
        if len(str(node.get("initial_value", ""))) > INPUT_MOST:
            errors.append(f"must be less than {INPUT_MOST + 1} characters "
                          f"[json-pointer:{at}/initial_value]")
    return errors


def image_refusals(node: Any, at: str) -> list[str]:
    """Every image (block, accessory or context element) under `node`, by Slack's rules."""
    if isinstance(node, list):
        return [e for n, child in enumerate(node) for e in image_refusals(child, f"{at}/{n}")]
    if not isinstance(node, dict):
        return []
    errors = _image_refusals(node, at) if node.get("type") == "image" else []
    for name, child in node.items():
        if isinstance(child, dict | list):
            errors += image_refusals(child, f"{at}/{name}")
    return errors


def _image_refusals(image: Json, at: str) -> list[str]:
    errors = []
    if "alt_text" not in image:
        errors.append(f"missing required field: alt_text [json-pointer:{at}]")
    elif not isinstance(image["alt_text"], str) or not 1 <= len(image["alt_text"]) <= 2000:
        errors.append(f"must be between 1 and 2000 characters [json-pointer:{at}/alt_text]")
    if ("image_url" in image) == ("slack_file" in image):
        errors.append(f"must provide either image_url or slack_file [json-pointer:{at}]")
    held = image.get("slack_file")
    if isinstance(held, dict):
        if ("id" in held) == ("url" in held):
            errors.append(f"must provide either id or url [json-pointer:{at}/slack_file]")
        elif "id" in held and not FILE_ID.match(str(held["id"])):
            errors.append("input must match regex pattern: ^[F][A-Z0-9]{8,}$ "
                          f"[json-pointer:{at}/slack_file/id]")
    return errors


def slack_files_of(blocks: list[Json], at: str = "/blocks") -> list[tuple[str, Json]]:
    """Each slack_file an image under `blocks` references, with its json-pointer."""
    found: list[tuple[str, Json]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for n, child in enumerate(node):
                walk(child, f"{path}/{n}")
        elif isinstance(node, dict):
            if node.get("type") == "image" and isinstance(node.get("slack_file"), dict):
                found.append((f"{path}/slack_file", node["slack_file"]))
            for name, child in node.items():
                if isinstance(child, dict | list):
                    walk(child, f"{path}/{name}")

    walk(blocks, at)
    return found
