-- Lease one slot of one item to an expert, atomically: never more than `overlap` slots per item.
-- ARGV[1]: the request, a JSON object (built by store.py `_claim_request`): expert, token, now,
--   expires_at, day, shuffle (draft indices as letters, A = 0: a permutation of A..Z),
--   want_gold, overlap (the least judgments an item gets; `target` holds more for items asked
--   again), adjudicator?, escalated_after? (ms), and `event`, the assigned event as the service
--   decided it; the script
--   adds the item it picks and the order it shows the drafts in, and writes the whole event.
-- Returns {reply} or {reply, item body}: the reply a JSON object with status (`lease`,
--   `inactive` with state, `empty`); a lease comes with the lease and the campaign's estimate_s
--   and estimate_n, and beside it the item's `item_added` body as stored.
local k = keyring()
local seen_key = KEYS[2]
local req = cjson.decode(ARGV[1])
local expert, token, now = req.expert, req.token, req.now
local overlap = req.overlap
local dynamic = req.escalated_after ~= nil  -- items may be asked again: each has its own target

local state = redis.call('HGET', k.meta, 'state')
if state ~= 'active' then return {cjson.encode({status = 'inactive', state = state or 'missing'})} end

local function item_body(item_seq)
  local entry = redis.call('XRANGE', k.log, '0-' .. item_seq, '0-' .. item_seq)
  -- an item whose event was archived: trim_archived.lua kept its body
  return entry[1] and entry[1][2][2] or redis.call('HGET', k.archived_items, item_seq)
end

-- The lease goes in as stored (JSON already); the item's body, the largest part, goes beside
-- the reply rather than inside it, so neither side escapes and unescapes it.
-- An adjudication comes with the item's earlier answers ("seq:vote," each) for the adjudicator.
local function leased(lease_json)
  local lease = cjson.decode(lease_json)
  local estimate = redis.call('HMGET', k.counts, 'estimate_s', 'estimate_n')
  local prior = lease.adjudicate and redis.call('HGET', k.votes, lease.item) or nil
  local reply = json_with({status = 'lease', estimate_s = tonumber(estimate[1]),
                           estimate_n = tonumber(estimate[2]), prior = prior},
                          '"lease":' .. lease_json)
  return {reply, item_body(lease.item_seq)}
end

-- An expert holds one live task per campaign: asking again returns the same one.
local held = redis.call('HGET', k.active, expert)
if held then
  local ends = redis.call('ZSCORE', k.expiry, held)
  if ends and tonumber(ends) > now then return leased(redis.call('HGET', k.leases, held)) end
  expire_lease(k, held, req.event.at, req.event.campaign)
end

-- The first unseen item in queue order, in at most `limit` looks, scored at most `max`.
local function first_unseen(zkey, min, limit, max)
  local offset = 0
  while offset < limit do
    local found = redis.call('ZRANGEBYSCORE', zkey, min, max or '+inf', 'WITHSCORES', 'LIMIT',
                             offset, 100)
    if #found == 0 then return nil end
    for i = 1, #found, 2 do
      if redis.call('SISMEMBER', seen_key, found[i]) == 0 then return found[i], found[i + 1] end
    end
    offset = offset + 100
  end
  return nil
end

-- Each expert walks a queue forward from a cursor, so a prolific expert never rescans the
-- items they already did; slots given back behind the cursor are found by a bounded rescan.
local function pick(zkey, cursor_field)
  local cursor = redis.call('HGET', k.cursors, cursor_field) or '0'
  local item, score = first_unseen(zkey, '(' .. cursor, 100000)
  if item then
    redis.call('HSET', k.cursors, cursor_field, score)
    return item
  end
  return first_unseen(zkey, '-inf', 2000)
end

-- Adjudicators make final calls first; then items asked again for their disagreement (senior
-- experts at once, others once they waited `escalated_after`); then gold; then the queue.
local item, gold, adjudicate = nil, false, false
if req.adjudicator then
  item = first_unseen(k.adjq, '-inf', 2000)
  if item then
    adjudicate = true
    redis.call('ZREM', k.adjq, item)
    redis.call('SADD', k.adjudicating, item)
  end
end
if not item and req.escalated_after then item = first_unseen(k.esc, '-inf', 2000, req.escalated_after) end
if not item and req.want_gold then
  item = pick(k.gold, 'g:' .. expert)
  gold = item ~= nil
end
if not item then item = pick(k.open, 'o:' .. expert) end
if not item then return {cjson.encode({status = 'empty'})} end

local info = redis.call('HGET', k.items, item)
local comma1 = string.find(info, ',', 1, true)
local comma2 = string.find(info, ',', comma1 + 1, true)
local item_seq = tonumber(string.sub(info, 1, comma1 - 1))
local n_drafts = tonumber(string.sub(info, comma1 + 1, comma2 - 1))

if not gold and not adjudicate
    and not slot_free(redis.call('HINCRBY', k.taken, item, 1),
                      dynamic and target_of(k, item, overlap) or overlap) then
  redis.call('ZREM', k.open, item)
  redis.call('ZREM', k.esc, item)
end

local order = shown_order(req.shuffle, n_drafts)
local order_json = '"order":' .. json_indices(order)
local lease = json_with({token = token, campaign = req.event.campaign, expert = expert,
                         day = req.day, assigned_at = now, expires_at = req.expires_at,
                         item = item, item_seq = item_seq, gold = gold, adjudicate = adjudicate,
                         escalated = dynamic and redis.call('HEXISTS', k.escalated, item) == 1},
                        order_json)
local event = req.event
event.item = item
event.payload = nil
-- The SHA-256 of every original image the card shows: the record names the exact bytes.
local images = redis.call('HGET', k.images, item)
local shown = nil
if images then
  shown = {}
  for sha in string.gmatch(images, '[^,]+') do shown[#shown + 1] = sha end
end
local body = json_with(event, '"payload":' .. json_with(
  {expires_at = req.expires_at, gold = gold, item_seq = item_seq,
   adjudicate = adjudicate or nil, images = shown}, order_json))

redis.call('SADD', seen_key, item)
redis.call('HSET', k.leases, token, lease)
redis.call('HSET', k.state, token, 'live')
redis.call('ZADD', k.expiry, req.expires_at, token)
redis.call('HSET', k.active, expert, token)
append_event(k.seq, k.log, body)
return leased(lease)
