"""Rows for trainers: TRL's preference, KTO and SFT shapes and OpenAI's preference fine-tuning
lines, built one task record at a time. The rules TRL does not check are kept here by design:
one shape per file, an explicit prompt in every row, string completions that start with a space
or newline, never a pair with identical texts, KTO labels as JSON booleans.

A campaign whose items show images is written in TRL's vision shape (its docs, "Vision
datasets"; the shape of trl-lib/rlaif-v and llava-instruct-mix): conversational, every message's
`content` a list of typed parts, one `{"type": "image"}` per image before the text of the user
turn that asks, and an `images` column naming the files (or, in a stream, the SHA-256 hashes)."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel

from core.domain.items import Item, prompt_text, turns_of
from core.reports.judgments import model_name, ranking, winner_loser
from core.reports.records import DECIDED, TaskRecord

Row = dict[str, Any]
IMAGES_LEFT_OUT = "images"  # openai-dpo: an item with images gives no row


class ExportOptions(BaseModel):
    """`conversational`: prompts and completions as message lists instead of strings (forced on
    for a campaign with any conversation prompt: see `shaped`). `pairs`: from a ranking, every
    implied pair or only best over worst. `sft_shape`: `messages` (trains on every token) or
    `prompt_completion` (completion-only loss)."""

    conversational: bool = False
    pairs: Literal["all", "best_worst"] = "all"
    sft_shape: Literal["messages", "prompt_completion"] = "messages"
    include_model: bool = False  # rows the model decided alone (auto-accepted), marked
    vision: bool = False  # TRL's vision shape (forced on for a campaign with images: `shaped`)
    images_dir: str | None = None  # the folder beside the file that `images` names; None: hashes


def shaped(options: ExportOptions | None, conversations: int,
           images: bool = False) -> ExportOptions:
    """The options a campaign's file is written with. TRL picks the format from the first row,
    so one conversation item makes every row conversational (a string prompt then becomes one
    user turn); `conversations` is the campaign's count of them (`CampaignStatus`). One item
    with images (`images`) makes every row vision-shaped, the rows without images too."""
    options = options or ExportOptions()
    update = {"conversational": True} if conversations > 0 or images else {}
    if images:
        update["vision"] = True
    return options.model_copy(update=update) if update else options


class Tally:
    """Rows written and tasks left out, by reason: the export's summary is built from it."""

    def __init__(self) -> None:
        self.excluded: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()

    def skip(self, reason: str) -> Iterator[Row]:
        self.excluded[reason] += 1
        return iter(())


class Pair:
    """A preferred and a rejected text with where each came from."""

    def __init__(self, chosen: str, rejected: str, chosen_model: str, rejected_model: str,
                 source: str) -> None:
        self.chosen, self.rejected = chosen, rejected
        self.chosen_model, self.rejected_model = chosen_model, rejected_model
        self.source = source


def chat(item: Item, options: ExportOptions) -> bool:
    """Whether this item's row is conversational. A conversation is never flattened to a string;
    a caller that did not say the campaign has conversations (`shaped`) still gets message lists
    for them, only a mix of both kinds then needs `shaped` to keep the file one shape."""
    return options.conversational or isinstance(item.prompt, list)


def completion(text: str, item: Item, options: ExportOptions) -> str | list[dict[str, Any]]:
    """TRL concatenates string prompt and completion with no separator, so a string completion
    starts with whitespace; a conversational one is the assistant turn alone."""
    if options.vision:
        return [{"role": "assistant", "content": [text_part(text)]}]
    if chat(item, options):
        return [{"role": "assistant", "content": text}]
    return text if text[:1].isspace() else " " + text


def prompt(item: Item, options: ExportOptions) -> str | list[dict[str, Any]]:
    """A conversational prompt is the whole conversation, system turn kept, ending with the
    user turn the completion answers."""
    if options.vision:
        return vision_messages(item)
    return messages(item) if chat(item, options) else prompt_text(item.prompt)


def messages(item: Item) -> list[dict[str, str]]:
    """The item's prompt as chat messages: a plain string is one user turn."""
    return [{"role": turn.role, "content": turn.content} for turn in turns_of(item.prompt)]


def vision_messages(item: Item) -> list[dict[str, Any]]:
    """Every turn's content as typed parts (one shape per column, as Arrow needs); the last
    turn, the user's question, holds one image part per image before its text, in the order
    of the `images` column."""
    turns: list[dict[str, Any]] = [{"role": m["role"], "content": [text_part(m["content"])]}
                                   for m in messages(item)]
    turns[-1]["content"][:0] = [{"type": "image"} for _ in item.images]
    return turns


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def image_column(item: Item, options: ExportOptions) -> dict[str, list[str]]:
    """TRL's `images` column, for a vision-shaped file: the item's images as files under
    `images_dir` (relative to the file, named by SHA-256), or as bare SHA-256 hashes where no
    folder is written beside the lines (a stream)."""
    if not options.vision:
        return {}
    return {"images": [image_path(str(image.sha256), str(image.type), options.images_dir)
                       for image in item.images]}


def image_path(sha256: str, type_: str, folder: str | None) -> str:
    if folder is None:
        return sha256
    return f"{folder}/{sha256}.{EXTENSIONS.get(type_, type_.rpartition('/')[2])}"


def vision_notes(options: ExportOptions, tally: Tally) -> list[str]:
    """What the summary says of images: the shape and what the `images` column holds."""
    if left_out := tally.excluded.get(IMAGES_LEFT_OUT):
        return [f"{left_out} rows with images left out: openai-dpo rows carry text only here "
                "(use preference for TRL's vision DPO)"]
    if not options.vision:
        return []
    if options.images_dir is None:
        return ["TRL vision shape; the images column holds SHA-256 hashes, since a stream has "
                "no folder (the CLI's `-o FILE` writes images/ beside the file)"]
    return [f"TRL vision shape; the images column holds paths relative to this file, in "
            f"{options.images_dir}/ (load it from its folder)"]


def prompt_key(item: Item) -> str:
    """A stable key for "the same prompt": canonical JSON, which tells a string from a
    conversation and a conversation from any other, and one image from another."""
    value: Any = item.prompt if isinstance(item.prompt, str) else messages(item)
    if item.images:
        value = {"prompt": value, "images": [image.sha256 for image in item.images]}
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def trace(record: TaskRecord) -> Row:
    """Columns that tie a row to its item, expert and event, who decided (`expert`,
    `adjudicator`, `model`) and why (none named images/tools/input_ids)."""
    return {"item": record.item_id, "expert": record.expert, "answer_seq": record.event.seq,
            "answer_hash": record.event.hash or "", "decided_by": record.decided_by,
            "rationale": record.rationale}


def _left_out(record: TaskRecord) -> str:
    """Why a record that decided nothing gives no row: its event type (skipped, flagged)."""
    return record.type if record.type not in DECIDED else "item_missing"


def pairs_from(record: TaskRecord, options: ExportOptions, tally: Tally) -> list[Pair]:
    item, kind = record.item, record.decision.get("type")
    if item is None or record.type not in DECIDED:
        tally.excluded[_left_out(record)] += 1
        return []
    drafts = item.drafts
    if kind == "pairwise":
        found = winner_loser(record)
        if found is None:
            tally.excluded["tie"] += 1
            return []
        return [_draft_pair(item, found[0], found[1], "pairwise")]
    if kind == "rank":
        ranked = ranking(record) or []
        if options.pairs == "best_worst":
            return [_draft_pair(item, ranked[0], ranked[-1], "rank")]
        return [_draft_pair(item, better, worse, "rank")
                for i, better in enumerate(ranked) for worse in ranked[i + 1:]]
    text = _expert_text(record)
    if text is not None and kind in ("correct", "verify"):
        draft = drafts[record.order[0]]
        return [Pair(text, draft.text, "expert", model_name(draft), kind)]
    tally.excluded["accepted_draft" if kind == "verify" else str(kind)] += 1
    return []


def _kept_pairs(record: TaskRecord, options: ExportOptions, tally: Tally) -> Iterator[Pair]:
    """The pairs that teach something: identical texts are left out and counted."""
    for pair in pairs_from(record, options, tally):
        if pair.chosen.strip() == pair.rejected.strip():
            tally.excluded["identical"] += 1
            continue
        tally.sources[pair.source] += 1
        yield pair


def _draft_pair(item: Item, better: int, worse: int, source: str) -> Pair:
    chosen, rejected = item.drafts[better], item.drafts[worse]
    return Pair(chosen.text, rejected.text, model_name(chosen), model_name(rejected), source)


def _expert_text(record: TaskRecord) -> str | None:
    """The expert's own final text: a correction, an override or a written answer."""
    decision = record.decision
    kind = decision.get("type")
    if kind in ("correct", "write") or (kind == "verify" and decision.get("verdict") == "override"):
        return str(decision.get("text") or "")
    return None


class Ratings:
    """Scores of single drafts, by prompt: a rating says nothing alone, but two drafts of one
    prompt rated apart make a pair whose `margin` (TRL's reward-model column) is the gap
    between their mean scores. Held until the log has been read, one entry per rated item."""

    def __init__(self) -> None:
        self.by_prompt: dict[str, dict[str, _Rated]] = defaultdict(dict)

    def add(self, record: TaskRecord) -> None:
        assert record.item is not None
        draft = record.item.drafts[record.order[0]]
        rated = self.by_prompt[prompt_key(record.item)].setdefault(
            draft.text, _Rated(record.item, model_name(draft)))
        rated.scores.append(float(record.decision["score"]))
        rated.deciders.add(record.decided_by)

    def rows(self, options: ExportOptions, tally: Tally) -> Iterator[Row]:
        for drafts in self.by_prompt.values():
            ranked = sorted(drafts.items(), key=lambda kv: -kv[1].mean)
            for i, (chosen, better) in enumerate(ranked):
                for rejected, worse in ranked[i + 1:]:
                    if better.mean == worse.mean or chosen.strip() == rejected.strip():
                        tally.excluded["equal_ratings" if better.mean == worse.mean
                                       else "identical"] += 1
                        continue
                    tally.sources["rate"] += 1
                    yield {"prompt": prompt(better.item, options),
                           "chosen": completion(chosen, better.item, options),
                           "rejected": completion(rejected, better.item, options),
                           **image_column(better.item, options),
                           "chosen_model": better.model, "rejected_model": worse.model,
                           "source": "rate", "margin": round(better.mean - worse.mean, 4),
                           "item": better.item.id, "rejected_item": worse.item.id,
                           "ratings": len(better.scores) + len(worse.scores),
                           "decided_by": _rated_by(better, worse), "rationale": None}


def _rated_by(*rated: _Rated) -> str:
    """A pair from mean ratings: `adjudicator` when a final call's score is among them."""
    deciders = set().union(*(r.deciders for r in rated))
    return "adjudicator" if "adjudicator" in deciders else "expert"



class _Rated:
    def __init__(self, item: Item, model: str) -> None:
        self.item, self.model = item, model
        self.scores: list[float] = []
        self.deciders: set[str] = set()

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)


def preference_rows(record: TaskRecord, options: ExportOptions, tally: Tally,
                    ratings: Ratings | None = None) -> Iterator[Row]:
    """TRL preference rows: prompt, chosen, rejected, plus trace columns. Ratings are kept in
    `ratings` and become rows at the end (`Ratings.rows`)."""
    if ratings is not None and record.type in DECIDED and record.item is not None \
            and record.decision.get("type") == "rate":
        ratings.add(record)
        return
    for pair in _kept_pairs(record, options, tally):
        assert record.item is not None
        yield {"prompt": prompt(record.item, options),
               "chosen": completion(pair.chosen, record.item, options),
               "rejected": completion(pair.rejected, record.item, options),
               **image_column(record.item, options),
               "chosen_model": pair.chosen_model, "rejected_model": pair.rejected_model,
               "source": pair.source, **trace(record)}


def openai_dpo_rows(record: TaskRecord, options: ExportOptions, tally: Tally) -> Iterator[Row]:
    """OpenAI preference fine-tuning: exactly input.messages, preferred_output and
    non_preferred_output (assistant turns); OpenAI refuses unknown keys, so no trace columns.
    An item with images gives no row: its text alone would train a judgment about pixels the
    model never saw (counted as `images`)."""
    if record.item is not None and record.item.images:
        tally.excluded[IMAGES_LEFT_OUT] += 1
        return
    for pair in _kept_pairs(record, options, tally):
        assert record.item is not None
        yield {"input": {"messages": messages(record.item)},
               "preferred_output": [{"role": "assistant", "content": pair.chosen}],
               "non_preferred_output": [{"role": "assistant", "content": pair.rejected}]}


def kto_rows(record: TaskRecord, options: ExportOptions, tally: Tally) -> Iterator[Row]:
    """Verify answers: an accepted draft is desirable; an override makes the draft undesirable
    and the expert's replacement desirable."""
    item, decision = record.item, record.decision
    if record.type not in DECIDED or item is None or decision.get("type") != "verify":
        return tally.skip(record.type if record.type not in DECIDED else
                          str(decision.get("type")))
    draft = item.drafts[record.order[0]]
    found = [(draft.text, decision.get("verdict") == "accept", model_name(draft))]
    if decision.get("verdict") == "override":
        found.append((str(decision.get("text") or ""), True, "expert"))
    return _kto(record, item, found, options, tally)


def _kto(record: TaskRecord, item: Item, found: list[tuple[str, bool, str]],
         options: ExportOptions, tally: Tally) -> Iterator[Row]:
    for text, label, model in found:
        tally.labels[str(label).lower()] += 1
        yield {"prompt": prompt(item, options), "completion": completion(text, item, options),
               "label": label, **image_column(item, options), "model": model, **trace(record)}


def sft_rows(record: TaskRecord, options: ExportOptions, tally: Tally) -> Iterator[Row]:
    """The expert's final text (corrections, overrides, written answers) as the reply."""
    item = record.item
    text = _expert_text(record) if record.type in DECIDED else None
    if item is None or text is None:
        reason = record.type if record.type not in DECIDED else str(record.decision.get("type"))
        return tally.skip("accepted_draft" if record.decision.get("verdict") == "accept"
                          else reason)
    if not text.strip():
        return tally.skip("empty")
    tally.sources[str(record.decision.get("type"))] += 1
    if options.sft_shape == "messages":
        chatty = options.model_copy(update={"conversational": True})  # messages: always chat
        row: Row = {"messages": [*prompt(item, chatty), *completion(text, item, chatty)]}
    else:
        row = {"prompt": prompt(item, options), "completion": completion(text, item, options)}
    row.update(image_column(item, options))
    return iter([{**row, "source": str(record.decision.get("type")), **trace(record)}])
