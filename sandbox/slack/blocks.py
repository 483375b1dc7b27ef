"""The Block Kit limits Slack enforces on messages, so the sandbox rejects what Slack would reject.

Slack answers ``invalid_blocks`` with JSON-pointer details such as
``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``. Only the limits svcbot can hit
are checked (message blocks, section, header, context, divider, actions with buttons, rich_text, image,
markdown); unknown block types pass.
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BLOCK_ID = 255
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000
MAX_ACTION_ID = 255
MAX_MARKDOWN_TEXT = 12000
MAX_MESSAGE_TEXT = 40000
TEXT_OBJECT_TYPES = ("plain_text", "mrkdwn")


def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _check_text_object(obj: Any, pointer: str, limit: int, errors: list[str], *, plain_only: bool = False) -> None:
    if not isinstance(obj, dict):
        errors.append(f"must be an object [json-pointer:{pointer}]")
        return
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else TEXT_OBJECT_TYPES
    if kind not in allowed:
        errors.append(f"must be one of {', '.join(allowed)} [json-pointer:{pointer}/type]")
    text = obj.get("text")
    if not isinstance(text, str) or text == "":
        errors.append(f"must be a non-empty string [json-pointer:{pointer}/text]")
    elif len(text) > limit:
        errors.append(_too_long(limit, f"{pointer}/text"))


def _check_button(el: dict[str, Any], pointer: str, errors: list[str]) -> None:
    _check_text_object(el.get("text"), f"{pointer}/text", MAX_BUTTON_TEXT, errors, plain_only=True)
    action_id = el.get("action_id")
    if action_id is not None and len(str(action_id)) > MAX_ACTION_ID:
        errors.append(_too_long(MAX_ACTION_ID, f"{pointer}/action_id"))
    value = el.get("value")
    if value is not None and len(str(value)) > MAX_BUTTON_VALUE:
        errors.append(_too_long(MAX_BUTTON_VALUE, f"{pointer}/value"))
    url = el.get("url")
    if url is not None and len(str(url)) > MAX_BUTTON_URL:
        errors.append(_too_long(MAX_BUTTON_URL, f"{pointer}/url"))
    style = el.get("style")
    if style is not None and style not in ("primary", "danger"):
        errors.append(f"must be one of primary, danger [json-pointer:{pointer}/style]")


def _check_block(block: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        errors.append(f"missing required field: type [json-pointer:{pointer}]")
        return
    block_id = block.get("block_id")
    if block_id is not None and len(str(block_id)) > MAX_BLOCK_ID:
        errors.append(_too_long(MAX_BLOCK_ID, f"{pointer}/block_id"))
    kind = block["type"]
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide either text or fields [json-pointer:{pointer}]")
        if "text" in block:
            _check_text_object(block["text"], f"{pointer}/text", MAX_SECTION_TEXT, errors)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not fields:
                errors.append(f"must be a non-empty array [json-pointer:{pointer}/fields]")
            else:
                if len(fields) > MAX_FIELDS:
                    errors.append(f"must provide no more than {MAX_FIELDS} items [json-pointer:{pointer}/fields]")
                for i, field in enumerate(fields):
                    _check_text_object(field, f"{pointer}/fields/{i}", MAX_FIELD_TEXT, errors)
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "button":
            _check_button(accessory, f"{pointer}/accessory", errors)
    elif kind == "header":
        _check_text_object(block.get("text"), f"{pointer}/text", MAX_HEADER_TEXT, errors, plain_only=True)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(f"must be a non-empty array [json-pointer:{pointer}/elements]")
        elif len(elements) > MAX_CONTEXT_ELEMENTS:
            errors.append(f"must provide no more than {MAX_CONTEXT_ELEMENTS} items [json-pointer:{pointer}/elements]")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(f"must be a non-empty array [json-pointer:{pointer}/elements]")
        else:
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                limit = MAX_ACTIONS_ELEMENTS
                errors.append(f"must provide no more than {limit} items [json-pointer:{pointer}/elements]")
            for i, el in enumerate(elements):
                if isinstance(el, dict) and el.get("type") == "button":
                    _check_button(el, f"{pointer}/elements/{i}", errors)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str):
            errors.append(f"must be a string [json-pointer:{pointer}/text]")
        elif len(text) > MAX_MARKDOWN_TEXT:
            errors.append(_too_long(MAX_MARKDOWN_TEXT, f"{pointer}/text"))


def validate_blocks(blocks: Any) -> list[str]:
    """Every problem Slack would report for a message's ``blocks`` (empty when they are fine)."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"must provide no more than {MAX_BLOCKS} items [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        _check_block(block, f"/blocks/{i}", errors)
    return errors


def find_button(blocks: Any, action_id: str, value: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The (block_id, button element) with this action_id (and value, when given) in a message's blocks."""
    if not isinstance(blocks, list):
        return None
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements") or [])
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            candidates = [block["accessory"]]
        for el in candidates:
            if not isinstance(el, dict) or el.get("action_id") != action_id:
                continue
            if value is not None and el.get("value") != value:
                continue
            return str(block.get("block_id") or f"b{i}"), el
    return None
