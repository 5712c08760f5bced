"""One campaign's log as DuckDB reads it: the archived segments' Parquet files and the Redis tail
(an Arrow table of seq, hash, body) as one view `ev`, and the joins every report needs done in
SQL: each finished task to the `assigned` event of its lease, and that to its item's event.
Blocking calls on a cursor of its own: the async reader runs them in a thread.

The lease join follows core/reports/records.py `_walk`: an `assigned` event opens its lease; the
first of the lease's finishing events after it (answered, skipped, flagged, or the decisions
asked for in `also`) takes it, unless the lease was `undeliverable` before it expired (never
shown); a finishing event after that, or with no `assigned` before it, has none. The plain
reader forgets an expired lease after 50,000 later expiries; this one never does."""

from __future__ import annotations

from collections import Counter
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from core.provenance.events import GENESIS
from core.reports.records import FINISHED, ITEM_EVENTS, LEASELESS
from core.reports.treatment import Made

TAIL_SCHEMA = pa.schema([("seq", pa.int64()), ("hash", pa.string()), ("body", pa.string())])
ROWS = 2048  # per Arrow batch handed to Python
SEGMENT_COLUMNS = "seq, hash, body, type, lease, item, expert, payload"
TAIL_COLUMNS = ("seq, hash, body, body->>'$.type' AS type, body->>'$.lease' AS lease, "
                "body->>'$.item' AS item, body->>'$.expert' AS expert, "
                "CAST(body->'$.payload' AS VARCHAR) AS payload")
PAYLOAD = "CAST(json_extract({table}.body, '$.payload') AS VARCHAR)"  # in the body's key order


def _quoted(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


class Scan:
    """The view `ev` over `files` and `tail`, and `finished`: one row per finishing event with
    its lease's `assigned` event and item seq (null where it has none)."""

    def __init__(self, db: duckdb.DuckDBPyConnection, files: list[str], tail: pa.Table,
                 also: tuple[str, ...] = (), after: int = 0) -> None:
        """`after`: only tasks finishing past this seq will be asked for, so only their
        leases' events are joined (a report that has the segments' tallies reads the tail)."""
        self.cur = db.cursor()
        self.cur.register("tail", tail)
        parts = [f"SELECT {TAIL_COLUMNS} FROM tail"]
        if files:
            parts.insert(0, f"SELECT {SEGMENT_COLUMNS} FROM read_parquet([{_quoted(files)}])")
        self.cur.execute("CREATE TEMP VIEW ev AS " + " UNION ALL ".join(parts))
        self.finishing = FINISHED + tuple(t for t in also if t not in LEASELESS)
        self.leaseless = tuple(t for t in also if t in LEASELESS)
        self.after = after
        self.joined = False

    def join(self) -> None:
        """Make `finished` (once): the reads that need it call this first."""
        if not self.joined:
            self._finished(self.after)
            self.joined = True

    def close(self) -> None:
        self.cur.close()

    def _finished(self, after: int) -> None:
        ends = _quoted(self.finishing)
        wanted = (f" AND lease IN (SELECT lease FROM ev WHERE seq > {int(after)} AND type IN "
                  f"({ends}))" if after else "")
        self.cur.execute(f"""
CREATE TEMP TABLE lease_ev AS
SELECT seq, hash, type, lease,
       CASE WHEN type = 'assigned'
            THEN CAST(json_extract_string(payload, '$.item_seq') AS BIGINT) END AS item_seq,
       count(*) FILTER (WHERE type = 'assigned') OVER (
           PARTITION BY lease ORDER BY seq ROWS UNBOUNDED PRECEDING) AS g
FROM ev WHERE lease <> '' AND type IN ('assigned', 'lease_expired', 'undeliverable', {ends})
{wanted}""")
        leaseless = ""
        if self.leaseless:
            leaseless = f"""UNION ALL
SELECT f.seq, NULL, NULL, (SELECT min(i.seq) FROM ev i WHERE i.type IN ({_quoted(ITEM_EVENTS)})
                           AND i.item <> '' AND i.item = f.item AND i.seq < f.seq)
FROM ev f WHERE f.type IN ({_quoted(self.leaseless)}) AND f.seq > {int(after)}"""
        self.cur.execute(f"""
CREATE TEMP TABLE finished AS
WITH ends AS (
  SELECT lease, g, seq, type, count(*) FILTER (WHERE type = 'lease_expired') OVER (
      PARTITION BY lease, g ORDER BY seq ROWS UNBOUNDED PRECEDING) AS expired
  FROM lease_ev WHERE g > 0),
first_end AS (
  SELECT lease, g, min(seq) AS seq FROM ends
  WHERE type IN ({ends}) OR (type = 'undeliverable' AND expired = 0) GROUP BY lease, g),
assigned AS (
  SELECT lease, g, seq AS a_seq, hash AS a_hash, item_seq FROM lease_ev WHERE type = 'assigned')
SELECT l.seq, a.a_seq, a.a_hash, a.item_seq
FROM lease_ev l
LEFT JOIN first_end e ON e.lease = l.lease AND e.g = l.g AND e.seq = l.seq
LEFT JOIN assigned a ON a.lease = e.lease AND a.g = e.g
WHERE l.type IN ({ends})
{leaseless}""")

    def records(self, after: int, upto: int | None, with_items: bool) -> pa.RecordBatchReader:
        """The finishing events with seq in (after, upto], in seq order, with what
        core.reports.records.record_of needs."""
        self.join()
        items = (", i.hash AS item_hash, CAST(json_extract(i.body, '$.payload.item') AS VARCHAR)"
                 " AS item_json" if with_items else "")
        join = "LEFT JOIN ev i ON i.seq = m.item_seq" if with_items else ""
        bound = "" if upto is None else "AND m.seq <= $upto"
        sql = f"""
SELECT m.seq, f.hash, f.type, f.expert, json_extract_string(f.body, '$.actor_id') AS actor_id,
       f.lease, f.item, json_extract_string(f.body, '$.at') AS at, {PAYLOAD.format(table='f')}
       AS payload, CASE WHEN m.seq = 1 THEN '{GENESIS}' ELSE p.hash END AS prev,
       m.a_seq, m.a_hash, m.item_seq{items}
FROM finished m JOIN ev f ON f.seq = m.seq
LEFT JOIN ev p ON p.seq = m.seq - 1
{join}
WHERE m.seq > $after {bound}
ORDER BY m.seq"""
        params: dict[str, Any] = {"after": after} | ({} if upto is None else {"upto": upto})
        return self.cur.sql(sql, params=params).to_arrow_reader(ROWS)

    def made(self, after: int, upto: int | None) -> Counter[Made]:
        """Drafts given in `item_added` and drafted in `drafted` events in (after, upto], by
        model, version and day (core/reports/history.py `drafts_made`)."""
        bound = "" if upto is None else "AND seq <= $upto"
        sql = f"""
WITH drafts AS (
  SELECT unnest(json_extract(body, '$.payload.item.drafts[*]')) AS d, body
  FROM ev WHERE type = 'item_added' AND seq > $after {bound}
  UNION ALL
  SELECT json_extract(body, '$.payload.draft') AS d, body
  FROM ev WHERE type = 'drafted' AND seq > $after {bound})
SELECT coalesce(json_extract_string(d, '$.model'), 'unknown'),
       coalesce(json_extract_string(d, '$.model_version'), ''),
       substr(coalesce(json_extract_string(body, '$.at'), ''), 1, 10), count(*)
FROM drafts GROUP BY ALL"""
        params: dict[str, Any] = {"after": after} | ({} if upto is None else {"upto": upto})
        rows = self.cur.execute(sql, params).fetchall()
        return Counter({(str(m), str(v), str(d)): int(n) for m, v, d, n in rows})

    def median_answer(self) -> float | None:
        """The median active time of the answers (core.reports.tallies.median_of over the
        quality tally's: each answered task's `timing.active_seconds`, 0 when missing)."""
        self.join()
        found = self.cur.sql("""
WITH a AS (SELECT coalesce(TRY_CAST(json_extract_string(f.payload, '$.timing.active_seconds')
                                    AS DOUBLE), 0.0) AS active
           FROM finished m JOIN ev f ON f.seq = m.seq WHERE f.type = 'answered'),
s AS (SELECT list_sort(list(active)) AS v, count(*) AS c FROM a)
SELECT v[(c - 1) // 2 + 1], v[c // 2 + 1] FROM s WHERE c > 0""").fetchall()
        if not found:
            return None
        low, high = float(found[0][0]), float(found[0][1])
        return low if low == high else (low + high) / 2

    def has_images(self) -> bool:
        found = self.cur.execute(f"""
SELECT 1 FROM ev WHERE type IN ({_quoted(ITEM_EVENTS)}) AND contains(body, '"images"')
AND coalesce(json_array_length(body, '$.payload.item.images'), 0) > 0 LIMIT 1""").fetchone()
        return found is not None


def tail_table(seqs: list[int], hashes: list[str | None], bodies: list[str]) -> pa.Table:
    return pa.table({"seq": pa.array(seqs, pa.int64()), "hash": pa.array(hashes, pa.string()),
                     "body": pa.array(bodies, pa.string())}, schema=TAIL_SCHEMA)
