"""Export lines written by DuckDB, for the exports whose rows are plain enough to say in SQL:
`trail` and `preference` of a pairwise campaign without images or auto-accept (the bulk of
preference data). Each line holds the JSON values, in the key order, that core/reports/
exports.py and trainers.py build from a TaskRecord (the contract suite checks it); numbers
and escapes are written by DuckDB, so an exotic float may read `1e-7` where Python writes
`1e-07`. Any other export is built from the records in Python."""

from __future__ import annotations

import sys
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from adapters.history.scan import ROWS, Scan
from core.domain.campaigns import Campaign
from core.domain.kinds import Kind
from core.privacy.pseudonyms import Erasures, digest
from core.provenance.events import GENESIS
from core.reports.lines import Lined, LinePlan
from core.reports.records import DECIDED

FORMATS = ("trail", "preference")
# What Python's str.isspace() and str.strip() take for white space, as an RE2 class.
SPACE = "[" + "".join(f"\\x{{{code:x}}}" for code in range(sys.maxunicode + 1)
                      if chr(code).isspace()) + "]"


def writes(campaign: Campaign, plan: LinePlan) -> bool:
    return (plan.format in FORMATS and campaign.spec.kind == Kind.pairwise and not plan.vision
            and campaign.spec.route.auto_accept is None)


def truthy(value: str) -> str:
    """Python's truth of a JSON value (None, false, 0, "", [] and {} are false)."""
    return f"""(CASE json_type({value})
  WHEN 'BOOLEAN' THEN CAST({value} AS VARCHAR) = 'true'
  WHEN 'BIGINT' THEN CAST({value} AS DOUBLE) <> 0 WHEN 'UBIGINT' THEN CAST({value} AS DOUBLE) <> 0
  WHEN 'DOUBLE' THEN CAST({value} AS DOUBLE) <> 0
  WHEN 'VARCHAR' THEN length({value} ->> '$') > 0
  WHEN 'ARRAY' THEN json_array_length({value}) > 0
  WHEN 'OBJECT' THEN CAST({value} AS VARCHAR) <> '{{}}'
  ELSE false END)"""


def _or(value: str, default: str) -> str:
    """`value or default`, for a JSON value."""
    return f"(CASE WHEN {truthy(value)} THEN {value} ELSE '{default}'::JSON END)"


def _draft(index: str) -> str:
    return f"drafts[CAST({index} AS INTEGER) + 1]"


def _fields(draft: str) -> str:
    """A draft's text, model and version, in one parse of it."""
    return f"json_extract_string({draft}, ['$.text', '$.model', '$.model_version'])"


def _model(fields: str) -> str:
    """core.reports.judgments.model_name (of `_fields`): model@version, or the model alone."""
    version = f"coalesce({fields}[3], '')"
    return (f"(coalesce({fields}[2], 'unknown') || "
            f"CASE WHEN {version} <> '' THEN '@' || {version} ELSE '' END)")


PAYLOAD = ("decision", "order", "timing", "gold", "late", "channel", "rationale", "qualification")
ITEM = ("prompt", "drafts", "gold", "images")
# Each JSON document is parsed once: its fields come out together, as a list; an item's (one
# event, read by every answer to it) once per item, before the answers are joined to it.
RECORDS = f"""
items AS MATERIALIZED (SELECT * ITEM_SHOWN FROM (
  SELECT seq AS i_seq, hash AS item_hash, ij[1] AS prompt, CAST(ij[2] AS JSON[]) AS drafts,
         list_transform(CAST(ij[2] AS JSON[]), lambda draft: {_fields("draft")}) AS dfields,
         ij[3] AS gold, ij[4] AS images
  FROM (SELECT seq, hash, json_extract(body, [{", ".join(f"'$.payload.item.{name}'"
                                                         for name in ITEM)}]) AS ij
        FROM ev WHERE seq IN (SELECT item_seq FROM finished)))),
r AS (
  SELECT m.seq, f.hash, f.type, f.expert, coalesce(f.lease, '') AS lease,
         coalesce(f.item, '') AS item_id,
         json_extract(f.body, [{", ".join(f"'$.payload.{name}'" for name in PAYLOAD)},
                               '$.actor_id']) AS pj,
         PREV_HASH AS prev,
         m.a_seq, m.a_hash, i.*
  FROM finished m JOIN ev f ON f.seq = m.seq
  PREV_JOIN
  LEFT JOIN items i ON i.i_seq = m.item_seq),
d AS (
  SELECT r.*, CASE WHEN coalesce(expert, '') <> '' THEN expert
                   ELSE pj[{len(PAYLOAD) + 1}] ->> '$' END AS who,
         {_or("pj[1]", "{}")} AS decision, {_or("pj[2]", "[]")} AS shown,
         {_or("pj[3]", "{}")} AS timing, pj[4] AS gold_flag, pj[5] AS late_flag,
         pj[6] AS channel, pj[7] AS said, pj[8] AS qualification
  FROM r),
e AS (
  SELECT d.*, coalesce(al.alias, who, '') AS expert_shown, lr.text AS late_text,
         decision ->> '$.type' AS dtype, decision ->> '$.choice' AS choice,
         CAST(shown AS BIGINT[]) AS order_list,
         coalesce(TRY_CAST(timing ->> '$.active_seconds' AS DOUBLE), 0.0) AS active,
         CASE type WHEN 'adjudicated' THEN 'adjudicator' WHEN 'auto_accepted' THEN 'model'
                   ELSE 'expert' END AS decided_by
  FROM d LEFT JOIN aliases al ON al.expert = d.who LEFT JOIN late lr ON lr.seq = d.seq),
w AS (
  SELECT e.*,
         CASE WHEN coalesce(json_type(said), 'NULL') <> 'NULL' THEN said ->> '$'
              ELSE late_text END AS rationale,
         CASE WHEN dtype = 'pairwise' AND choice IN ('A', 'B')
              THEN order_list[CASE choice WHEN 'A' THEN 1 ELSE 2 END] END AS winner,
         CASE WHEN dtype = 'pairwise' AND choice IN ('A', 'B')
              THEN order_list[CASE choice WHEN 'A' THEN 2 ELSE 1 END] END AS loser
  FROM e)"""


class Text(str):
    """SQL for JSON text that is never NULL: a member `obj` writes without a guard."""


def j(value: str) -> Text:
    """JSON text of a JSON value (null for SQL NULL)."""
    return Text(f"coalesce(CAST({value} AS VARCHAR), 'null')")


def q(value: str) -> Text:
    """JSON text of a string, an integer or a double."""
    return Text(f"coalesce(CAST(to_json({value}) AS VARCHAR), 'null')")


def b(value: str) -> Text:
    """JSON text of a boolean."""
    return Text(f"(CASE WHEN {value} THEN 'true' WHEN NOT ({value}) THEN 'false' "
                "ELSE 'null' END)")


def obj(*fields: tuple[str, str], end: str | None = None) -> str:
    """A JSON object written as text, its members in this order (then `end`, SQL text): no
    JSON value is parsed again to write it (json_object would). One `concat` of all the
    parts: a chain of `||` copies the growing line once per part, which cost most of an
    export's time. `||` gives NULL when a part is NULL and concat skips it, so a member that
    may be NULL (not `Text`) makes the object NULL, as the chain did."""
    parts, before = [], "{"
    for name, value in fields:
        parts += [f"'{before}\"{name}\":'", value]
        before = ","
    parts += ["'}'"] + ([end] if end else [])
    written = f"concat({', '.join(parts)})"
    maybe_null = [value for _, value in fields if not isinstance(value, Text)]
    if not maybe_null:
        return Text(written)
    nulls = " OR ".join(f"({value}) IS NULL" for value in maybe_null)
    return f"(CASE WHEN {nulls} THEN NULL ELSE {written} END)"


GOLD = "gold"
GOLD_IS = f"""(CASE json_type({GOLD})
  WHEN 'BIGINT' THEN CAST({GOLD} AS DOUBLE) = winner
  WHEN 'UBIGINT' THEN CAST({GOLD} AS DOUBLE) = winner
  WHEN 'DOUBLE' THEN CAST({GOLD} AS DOUBLE) = winner
  WHEN 'BOOLEAN' THEN (CASE WHEN CAST({GOLD} AS VARCHAR) = 'true' THEN 1 ELSE 0 END) = winner
  ELSE false END)"""
GOLD_CORRECT = f"""(CASE WHEN i_seq IS NULL OR coalesce(json_type({GOLD}), 'NULL') = 'NULL'
    THEN NULL
  WHEN dtype = 'none_acceptable' THEN false
  WHEN winner IS NULL THEN json_type({GOLD}) = 'VARCHAR' AND {GOLD} ->> '$' = 'tie'
  ELSE {GOLD_IS} END)"""
# The trail's drafts as shown and their models, written once per item for either order of a
# pair (an answer picks one); any other order is written per answer.
PAIRS = ((0, 1), (1, 0))


def _shown_pair(first: int, second: int) -> str:
    """SHOWN_DRAFTS for this order, per item: NULL where a draft is missing, and the answer's
    own then writes it (array_to_string leaves a NULL one out)."""
    def one(label: str, index: int) -> str:
        return (f"'{{\"label\":\"{label}\",\"index\":{index},' || "
                f"substr(CAST(drafts[{index + 1}] AS VARCHAR), 2)")
    return f"'[' || {one('A', first)} || ',' || {one('B', second)} || ']'"


def _models_pair(first: int, second: int) -> str:
    return (f"CAST(to_json([{_model(f'dfields[{first + 1}]')}, "
            f"{_model(f'dfields[{second + 1}]')}]) AS VARCHAR)")


ITEM_SHOWN = "".join(f", {_shown_pair(*pair)} AS shown_{pair[0]}{pair[1]}, "
                     f"{_models_pair(*pair)} AS models_{pair[0]}{pair[1]}" for pair in PAIRS)


def _by_order(per_item: str, per_answer: str) -> str:
    """The item's text for the answer's order if it has one (not NULL), else `per_answer`."""
    picks = "".join(f" WHEN len(order_list) = 2 AND order_list[1] = {a} AND order_list[2] = {b}"
                    f" AND {per_item}_{a}{b} IS NOT NULL THEN {per_item}_{a}{b}"
                    for a, b in PAIRS)
    return f"(CASE WHEN i_seq IS NULL THEN '[]'{picks} ELSE {per_answer} END)"


# Never NULL, these three: each branch is text, and array_to_string skips a NULL element.
SHOWN_DRAFTS = Text(_by_order("shown", f"""'[' || array_to_string(list_transform(
  range(len(order_list)), lambda pos: '{{"label":"' || chr(65 + CAST(pos AS INTEGER)) ||
  '","index":' || order_list[pos + 1] || ',' ||
  substr(CAST({_draft('order_list[pos + 1]')} AS VARCHAR), 2)), ',') || ']'"""))
DRAFT_MODELS = Text(_by_order("models", f"""CAST(to_json(list_transform(order_list,
  lambda index: {_model('dfields[CAST(index AS INTEGER) + 1]')})) AS VARCHAR)"""))
IMAGES = Text("""(CASE WHEN i_seq IS NULL OR images IS NULL THEN '[]' ELSE CAST(to_json(
  coalesce(json_extract_string(images, '$[*].sha256'), [])) AS VARCHAR) END)""")
RESOLVED = """(CASE WHEN dtype <> 'pairwise' OR dtype IS NULL THEN '{}'
  WHEN winner IS NULL THEN '{"tie":true}'
  ELSE '{"winner":' || winner || ',"loser":' || loser || '}' END)"""
FLAGS = obj(("fast", b("type = 'answered' AND $fast IS NOT NULL AND active < $fast")),
            ("flagged", j("CASE WHEN type = 'flagged' THEN decision -> '$.reason' END")),
            ("none_acceptable", b("coalesce(dtype = 'none_acceptable', false)")),
            ("skipped", b("type = 'skipped'")))
EVENTS = obj(("answer", obj(("seq", q("seq")), ("hash", q("hash")), ("prev", q("prev")))),
             ("assigned", Text(f"CASE WHEN a_seq IS NULL THEN 'null' ELSE "
                               f"{obj(('seq', q('a_seq')), ('hash', q('a_hash')))} END")),
             ("item", Text(f"CASE WHEN i_seq IS NULL THEN 'null' ELSE "
                           f"{obj(('seq', q('i_seq')), ('hash', q('item_hash')))} END")))
TRAIL_ROW = obj(
    ("campaign", q("$campaign")), ("kind", Text("'\"pairwise\"'")), ("item", q("item_id")),
    ("prompt", j("prompt")), ("expert", q("expert_shown")), ("images", IMAGES),
    ("lease", q("lease")), ("event", q("type")), ("channel", j("channel")),
    ("drafts", SHOWN_DRAFTS), ("order", j("shown")), ("decision", j("decision")),
    ("resolved", RESOLVED), ("gold", b(truthy("gold_flag"))),
    ("gold_correct", b(GOLD_CORRECT)), ("timing", j("timing")),
    ("late", b(truthy("late_flag"))), ("flags", FLAGS), ("events", EVENTS),
    ("draft_models", DRAFT_MODELS), ("edit_ratio", Text("'null'")),
    ("decided_in_s", q("CASE WHEN type IN ('answered', 'adjudicated') THEN active END")),
    ("decided_by", q("decided_by")), ("rationale", q("rationale")),
    ("checkpoint", q("CASE WHEN $checkpoint > 0 AND seq <= $checkpoint THEN $checkpoint END")),
    end="chr(10)")
TRAIL = f"""
SELECT seq, {TRAIL_ROW} AS line, NULL AS left_out, decided_by, NULL AS source
FROM w ORDER BY seq"""


def _texts() -> str:
    return f"""o AS (
  SELECT w.*, dfields[CAST(winner AS INTEGER) + 1] AS cw,
         dfields[CAST(loser AS INTEGER) + 1] AS rw FROM w),
p AS (
  SELECT o.*, cw[1] AS chosen, rw[1] AS rejected,
         {_model('cw')} AS chosen_model, {_model('rw')} AS rejected_model,
         $conversational OR json_type(prompt) = 'ARRAY' AS chat
  FROM o),
q AS (
  SELECT p.*, CASE
    WHEN {truthy("qualification")} THEN 'qualification'
    WHEN type NOT IN ({", ".join(f"'{t}'" for t in DECIDED)}) THEN type
    WHEN i_seq IS NULL THEN 'item_missing'
    WHEN dtype = 'pairwise' AND winner IS NULL THEN 'tie'
    WHEN dtype = 'pairwise' AND {_same('chosen', 'rejected')} THEN 'identical'
    WHEN dtype = 'pairwise' THEN NULL
    WHEN dtype = 'verify' THEN 'accepted_draft'
    ELSE coalesce(dtype, 'None') END AS left_out
  FROM p)"""


def _same(one: str, other: str) -> str:
    """`one.strip() == other.strip()`: stripped only when either ends in white space."""
    def ends(text: str) -> str:
        return f"regexp_matches(left({text}, 1) || right({text}, 1), '{SPACE}')"

    def stripped(text: str) -> str:
        return f"regexp_replace({text}, '^{SPACE}+|{SPACE}+$', '', 'g')"
    return (f"({one} = {other} OR (({ends(one)} OR {ends(other)}) AND "
            f"{stripped(one)} = {stripped(other)}))")


def _completion(text: str) -> Text:
    """core.reports.trainers.completion: the assistant turn, or a string that starts with
    white space (TRL joins prompt and completion with nothing between)."""
    turn = obj(("role", Text("'\"assistant\"'")), ("content", q(text)))
    return Text(f"CASE WHEN chat THEN '[' || {turn} || ']'"
                f" WHEN regexp_matches(left({text}, 1), '{SPACE}') THEN {q(text)}"
                f" ELSE {q(chr(39) + ' ' + chr(39) + ' || ' + text)} END")


USER_TURN = obj(("role", Text("'\"user\"'")), ("content", q("prompt ->> '$'")))
PROMPT = Text(f"""CASE WHEN NOT chat OR json_type(prompt) = 'ARRAY' THEN {j("prompt")}
  ELSE '[' || {USER_TURN} || ']' END""")
PREFERENCE_ROW = obj(
    ("prompt", PROMPT), ("chosen", _completion("chosen")),
    ("rejected", _completion("rejected")), ("chosen_model", q("chosen_model")),
    ("rejected_model", q("rejected_model")), ("source", Text("'\"pairwise\"'")),
    ("item", q("item_id")), ("expert", q("expert_shown")), ("answer_seq", q("seq")),
    ("answer_hash", q("coalesce(hash, '')")), ("decided_by", q("decided_by")),
    ("rationale", q("rationale")), end="chr(10)")
PREFERENCE = f"""
SELECT seq, CASE WHEN left_out IS NULL THEN {PREFERENCE_ROW} END AS line,
  left_out, decided_by, CASE WHEN left_out IS NULL THEN 'pairwise' END AS source
FROM q ORDER BY seq"""


PREV = ("CASE WHEN m.seq = 1 THEN $genesis ELSE p.hash END", "LEFT JOIN ev p ON p.seq = m.seq - 1")


def line_sql(plan: LinePlan) -> str:
    """The trail names each answer's `prev` (the hash before it); the preference rows do not,
    so they skip that join."""
    if plan.format == "trail":
        records = RECORDS.replace("PREV_HASH", PREV[0]).replace("PREV_JOIN", PREV[1])
        return f"WITH {records.replace('ITEM_SHOWN', ITEM_SHOWN)} {TRAIL}"
    records = RECORDS.replace("PREV_HASH", "NULL").replace("PREV_JOIN", "").replace(
        "ITEM_SHOWN", "")
    return f"WITH {records}, {_texts()} {PREFERENCE}"


WHO = """SELECT DISTINCT CASE WHEN coalesce(f.expert, '') <> '' THEN f.expert
  ELSE json_extract_string(f.body, '$.actor_id') END FROM finished m JOIN ev f ON f.seq = m.seq"""


def line_reader(scan: Scan, plan: LinePlan, campaign: Campaign,
                erasures: Erasures, late: dict[int, str]) -> pa.RecordBatchReader:
    """Batches of (seq, line, left_out, decided_by, source), in seq order, on a Scan's cursor
    (its `ev` view and `finished` table)."""
    scan.join()
    cur = scan.cur
    whos = [row[0] for row in cur.sql(WHO).fetchall()] if erasures.experts else []
    aliases = {who: alias for who in whos if who is not None
               and (alias := erasures.experts.get(digest(who))) is not None}
    cur.register("aliases", pa.table({"expert": pa.array(list(aliases), pa.string()),
                                      "alias": pa.array(list(aliases.values()), pa.string())}))
    cur.register("late", pa.table({"seq": pa.array(list(late), pa.int64()),
                                   "text": pa.array(list(late.values()), pa.string())}))
    sql = line_sql(plan)
    params: dict[str, Any] = {"campaign": campaign.id, "genesis": GENESIS,
                              "fast": plan.fast_below, "checkpoint": plan.checkpoint or 0,
                              "conversational": plan.conversational}
    return cur.sql(sql, params={name: value for name, value in params.items()
                                if f"${name}" in sql}).to_arrow_reader(ROWS)


def lined(batch: pa.RecordBatch) -> list[Lined]:
    columns = [batch.column(name).to_pylist()
               for name in ("seq", "line", "left_out", "decided_by", "source")]
    return [Lined(*row) for row in zip(*columns, strict=True)]
