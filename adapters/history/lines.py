"""Export lines written by DuckDB, for the exports whose rows are plain enough to say in SQL:
`trail` and `preference` of a pairwise campaign without images or auto-accept (the bulk of
preference data). Each line holds the JSON values, in the key order, that core/reports/
exports.py and trainers.py build from a TaskRecord (the contract suite checks it); numbers
and escapes are written by DuckDB, so an exotic float may read `1e-7` where Python writes
`1e-07`. Any other export is built from the records in Python."""

from __future__ import annotations

import sys
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from adapters.history.scan import ROWS
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
    return f"(item -> '$.drafts' -> CAST({index} AS INTEGER))"


def _model(draft: str) -> str:
    """core.reports.judgments.model_name: model@version, or the model without a version."""
    version = f"coalesce({draft} ->> '$.model_version', '')"
    return (f"(coalesce({draft} ->> '$.model', 'unknown') || "
            f"CASE WHEN {version} <> '' THEN '@' || {version} ELSE '' END)")


RECORDS = f"""
r AS (
  SELECT m.seq, f.hash, f.type,
         CASE WHEN coalesce(f.expert, '') <> '' THEN f.expert
              ELSE json_extract_string(f.body, '$.actor_id') END AS who,
         coalesce(f.lease, '') AS lease, coalesce(f.item, '') AS item_id,
         json_extract(f.body, '$.payload') AS payload,
         CASE WHEN m.seq = 1 THEN $genesis ELSE p.hash END AS prev,
         m.a_seq, m.a_hash, i.seq AS i_seq, i.hash AS item_hash,
         json_extract(i.body, '$.payload.item') AS item
  FROM finished m JOIN ev f ON f.seq = m.seq
  LEFT JOIN ev p ON p.seq = m.seq - 1
  LEFT JOIN ev i ON i.seq = m.item_seq),
d AS (
  SELECT r.*, coalesce(al.alias, who, '') AS expert, lr.text AS late_text,
         {_or("payload -> '$.decision'", "{}")} AS decision,
         {_or("payload -> '$.order'", "[]")} AS shown,
         {_or("payload -> '$.timing'", "{}")} AS timing
  FROM r LEFT JOIN aliases al ON al.expert = r.who LEFT JOIN late lr ON lr.seq = r.seq),
e AS (
  SELECT d.*, decision ->> '$.type' AS dtype, decision ->> '$.choice' AS choice,
         CAST(shown AS BIGINT[]) AS order_list,
         coalesce(TRY_CAST(timing ->> '$.active_seconds' AS DOUBLE), 0.0) AS active,
         CASE type WHEN 'adjudicated' THEN 'adjudicator' WHEN 'auto_accepted' THEN 'model'
                   ELSE 'expert' END AS decided_by,
         CASE WHEN json_type(payload -> '$.rationale') NOT IN ('NULL')
              THEN payload ->> '$.rationale' ELSE late_text END AS rationale
  FROM d),
w AS (
  SELECT e.*,
         CASE WHEN dtype = 'pairwise' AND choice IN ('A', 'B')
              THEN order_list[CASE choice WHEN 'A' THEN 1 ELSE 2 END] END AS winner,
         CASE WHEN dtype = 'pairwise' AND choice IN ('A', 'B')
              THEN order_list[CASE choice WHEN 'A' THEN 2 ELSE 1 END] END AS loser
  FROM e)"""

GOLD = "(item -> '$.gold')"
GOLD_IS = f"""(CASE json_type({GOLD})
  WHEN 'BIGINT' THEN CAST({GOLD} AS DOUBLE) = winner
  WHEN 'UBIGINT' THEN CAST({GOLD} AS DOUBLE) = winner
  WHEN 'DOUBLE' THEN CAST({GOLD} AS DOUBLE) = winner
  WHEN 'BOOLEAN' THEN (CASE WHEN CAST({GOLD} AS VARCHAR) = 'true' THEN 1 ELSE 0 END) = winner
  ELSE false END)"""
GOLD_CORRECT = f"""(CASE WHEN item IS NULL OR coalesce(json_type({GOLD}), 'NULL') = 'NULL' THEN NULL
  WHEN dtype = 'none_acceptable' THEN false
  WHEN winner IS NULL THEN json_type({GOLD}) = 'VARCHAR' AND {GOLD} ->> '$' = 'tie'
  ELSE {GOLD_IS} END)"""
SHOWN_DRAFTS = f"""(CASE WHEN item IS NULL THEN '[]' ELSE '[' || array_to_string(list_transform(
  range(len(order_list)), lambda pos: '{{"label":"' || chr(65 + CAST(pos AS INTEGER)) ||
  '","index":' || order_list[pos + 1] || ',' ||
  substr(CAST({_draft('order_list[pos + 1]')} AS VARCHAR), 2)), ',') || ']' END)::JSON"""
DRAFT_MODELS = f"""(CASE WHEN item IS NULL THEN '[]'::JSON ELSE to_json(list_transform(order_list,
  lambda index: {_model(_draft('index'))})) END)"""
IMAGES = """(CASE WHEN item IS NULL THEN '[]'::JSON
  ELSE to_json(coalesce(json_extract_string(item, '$.images[*].sha256'), [])) END)"""

TRAIL = f"""
SELECT seq, json_object(
  'campaign', $campaign, 'kind', 'pairwise', 'item', item_id,
  'prompt', item -> '$.prompt', 'expert', expert, 'images', {IMAGES},
  'lease', lease, 'event', type, 'channel', payload -> '$.channel', 'drafts', {SHOWN_DRAFTS},
  'order', shown, 'decision', decision,
  'resolved', CASE WHEN dtype <> 'pairwise' OR dtype IS NULL THEN '{{}}'::JSON
                   WHEN winner IS NULL THEN '{{"tie":true}}'::JSON
                   ELSE json_object('winner', winner, 'loser', loser) END,
  'gold', {truthy("payload -> '$.gold'")}, 'gold_correct', {GOLD_CORRECT},
  'timing', timing, 'late', {truthy("payload -> '$.late'")},
  'flags', json_object(
      'fast', type = 'answered' AND $fast IS NOT NULL AND active < $fast,
      'flagged', CASE WHEN type = 'flagged' THEN decision -> '$.reason' END,
      'none_acceptable', coalesce(dtype = 'none_acceptable', false),
      'skipped', type = 'skipped'),
  'events', json_object(
      'answer', json_object('seq', seq, 'hash', hash, 'prev', prev),
      'assigned', CASE WHEN a_seq IS NOT NULL THEN json_object('seq', a_seq, 'hash', a_hash) END,
      'item', CASE WHEN i_seq IS NOT NULL THEN json_object('seq', i_seq, 'hash', item_hash) END),
  'draft_models', {DRAFT_MODELS}, 'edit_ratio', NULL,
  'decided_in_s', CASE WHEN type IN ('answered', 'adjudicated') THEN active END,
  'decided_by', decided_by, 'rationale', rationale,
  'checkpoint', CASE WHEN $checkpoint > 0 AND seq <= $checkpoint THEN $checkpoint END
) || chr(10) AS line, NULL AS left_out, decided_by, NULL AS source
FROM w ORDER BY seq"""


def _texts() -> str:
    chosen = f"({_draft('winner')} ->> '$.text')"
    rejected = f"({_draft('loser')} ->> '$.text')"
    return f"""p AS (
  SELECT w.*, {chosen} AS chosen, {rejected} AS rejected,
         {_model(_draft('winner'))} AS chosen_model, {_model(_draft('loser'))} AS rejected_model,
         $conversational OR json_type(item -> '$.prompt') = 'ARRAY' AS chat
  FROM w),
q AS (
  SELECT p.*, CASE
    WHEN {truthy("payload -> '$.qualification'")} THEN 'qualification'
    WHEN type NOT IN ({", ".join(f"'{t}'" for t in DECIDED)}) THEN type
    WHEN i_seq IS NULL THEN 'item_missing'
    WHEN dtype = 'pairwise' AND winner IS NULL THEN 'tie'
    WHEN dtype = 'pairwise' AND {_stripped('chosen')} = {_stripped('rejected')}
      THEN 'identical'
    WHEN dtype = 'pairwise' THEN NULL
    WHEN dtype = 'verify' THEN 'accepted_draft'
    ELSE coalesce(dtype, 'None') END AS left_out
  FROM p)"""


def _stripped(text: str) -> str:
    return f"regexp_replace({text}, '^{SPACE}+|{SPACE}+$', '', 'g')"


def _completion(text: str) -> str:
    """core.reports.trainers.completion: the assistant turn, or a string that starts with
    white space (TRL joins prompt and completion with nothing between)."""
    return (f"CASE WHEN chat THEN json_array(json_object('role', 'assistant', 'content', {text}))"
            f" WHEN regexp_matches({text}, '^{SPACE}') THEN to_json({text})"
            f" ELSE to_json(' ' || {text}) END")


PROMPT = """CASE WHEN NOT chat THEN item -> '$.prompt'
  WHEN json_type(item -> '$.prompt') = 'ARRAY' THEN item -> '$.prompt'
  ELSE json_array(json_object('role', 'user', 'content', item ->> '$.prompt')) END"""
PREFERENCE = f"""
SELECT seq, CASE WHEN left_out IS NULL THEN json_object(
  'prompt', {PROMPT}, 'chosen', {_completion('chosen')}, 'rejected', {_completion('rejected')},
  'chosen_model', chosen_model, 'rejected_model', rejected_model, 'source', 'pairwise',
  'item', item_id, 'expert', expert, 'answer_seq', seq, 'answer_hash', coalesce(hash, ''),
  'decided_by', decided_by, 'rationale', rationale) || chr(10) END AS line,
  left_out, decided_by, CASE WHEN left_out IS NULL THEN 'pairwise' END AS source
FROM q ORDER BY seq"""


def line_sql(plan: LinePlan) -> str:
    if plan.format == "trail":
        return f"WITH {RECORDS} {TRAIL}"
    return f"WITH {RECORDS}, {_texts()} {PREFERENCE}"


WHO = """SELECT DISTINCT CASE WHEN coalesce(f.expert, '') <> '' THEN f.expert
  ELSE json_extract_string(f.body, '$.actor_id') END FROM finished m JOIN ev f ON f.seq = m.seq"""


def line_reader(cur: duckdb.DuckDBPyConnection, plan: LinePlan, campaign: Campaign,
                erasures: Erasures, late: dict[int, str]) -> pa.RecordBatchReader:
    """Batches of (seq, line, left_out, decided_by, source), in seq order, on a Scan's cursor
    (its `ev` view and `finished` table)."""
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
