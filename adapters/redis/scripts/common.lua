-- Shared by every script (prepended by the loader). Redis 6.2 has no function libraries.
-- Scripts that build events take one argument, a JSON object of named fields, answer with one,
-- and write the whole event themselves. Each rule below has its Python reference in
-- core/domain/rules.py, and tests/test_lua_rules.py checks the two agree on random inputs.

-- An event or a lease as JSON, written in one place: cjson writes `fields` (strings, integers
-- below 10^14, booleans, null, non-empty lists and objects) and `extra`, members already written
-- as JSON text, go at the end: what cjson cannot write (an empty list, which it writes as `{}`;
-- a number formatted by a rule). Key order is cjson's: verification hashes the canonical form
-- of what it parses (core.provenance.events.canonical), never the stored bytes.
local function json_with(fields, extra)
  local text = cjson.encode(fields)
  if text == '{}' then return '{' .. extra .. '}' end
  return string.sub(text, 1, -2) .. ',' .. extra .. '}'
end

-- A list of draft indices as JSON, empty or not.
local function json_indices(list)
  return '[' .. table.concat(list, ',') .. ']'
end

-- A time in ms as JSON, or null.
local function json_ms(value)
  return value and string.format('%d', value) or 'null'
end

-- Rules (references in core/domain/rules.py).

-- An expert's time on a task counts from the first touch, else the card shown, else the lease.
local function started_at(opened, delivered, assigned)
  return opened or delivered or assigned
end

-- Active seconds, capped at the time limit, to the millisecond; written as Python writes that
-- float (`30.0`, `12.34`), so the event and its canonical form hold the same text.
local function active_seconds(now, started, limit_s)
  local text = string.format('%.3f', math.min(math.max(now - started, 0) / 1000, limit_s))
  text = string.gsub(text, '0+$', '')
  if string.sub(text, -1) == '.' then text = text .. '0' end
  return text
end

-- The task time a card estimates: the lower median of the recent answers' active seconds.
local function median(values)
  local sorted = {}
  for i, v in ipairs(values) do sorted[i] = tonumber(v) end
  table.sort(sorted)
  return sorted[math.floor((#sorted + 1) / 2)]
end

-- The estimate is refreshed on each of the first answers, then every tenth.
local function refreshes_estimate(answers)
  return answers <= 20 or answers % 10 == 0
end

-- The order a card shows the drafts in: the shuffle's indices below the item's draft count.
local function shown_order(shuffle, n_drafts)
  local order = {}
  for i = 1, #shuffle do
    if #order == n_drafts then break end
    local index = string.byte(shuffle, i) - 65  -- A = 0
    if index < n_drafts then order[#order + 1] = index end
  end
  return order
end

-- An item's slot can be taken (a claim, a late answer taking its slot back) below the overlap.
local function slot_free(taken, overlap)
  return taken < overlap
end

-- Append one event body to the campaign log; its stream id `0-<seq>` is its place in the chain.
local function append_event(seq_key, log_key, body)
  local seq = redis.call('INCR', seq_key)
  redis.call('XADD', log_key, '0-' .. seq, 'e', body)
  return seq
end

-- Where an item sits in the open queue: by its seq, or by the campaign's route order (a score
-- the service set, in `qscore`), so a slot given back returns to its place.
local function queue_score(k, item, item_seq)
  return tonumber(redis.call('HGET', k.qscore, item) or item_seq)
end

-- Give a slot back: the item is offered again, at its place in the queue; an item asked again
-- for its disagreement goes back to the escalated queue, where senior experts look first.
local function reopen(k, item, item_seq)
  local left = redis.call('HINCRBY', k.taken, item, -1)
  if left < 0 then redis.call('HSET', k.taken, item, 0) end
  local escalated_at = redis.call('HGET', k.escalated, item)
  if escalated_at then
    redis.call('ZADD', k.esc, escalated_at, item)
  else
    redis.call('ZADD', k.open, queue_score(k, item, item_seq), item)
  end
end

-- How many judgments an item wants now: the campaign's least, grown while experts disagree.
local function target_of(k, item, least)
  return tonumber(redis.call('HGET', k.target, item) or least)
end

-- Whether an item's votes agree enough to stop asking (reference: core/domain/hard_cases.py
-- `settled`): scores by their spread; anything else by the majority's share, as integer counts.
local function settles(votes, share_ppm, max_spread, rated)
  if rated then
    local low, high = math.huge, -math.huge
    for _, vote in ipairs(votes) do
      local n = tonumber(vote)
      if n < low then low = n end
      if n > high then high = n end
    end
    return high - low <= max_spread
  end
  local counts, top = {}, 0
  for _, vote in ipairs(votes) do
    counts[vote] = (counts[vote] or 0) + 1
    if counts[vote] > top then top = counts[vote] end
  end
  return top * 1000000 >= share_ppm * #votes
end

-- A lease once its answer is recorded: one line in `leases` in place of its JSON, its state,
-- first outcome and marks folded in (their own hashes keep only leases not yet answered), so an
-- answered task keeps about a third of the bytes. '|'-separated, the item last (an item id may
-- hold '|', no other field can): FOLDED, state, seq, answered_at, active, decision, late ('late'
-- or ''), expert, day, assigned_at, expires_at, delivered_at, opened_at (ms, or ''), item_seq,
-- order (letters, A = 0), flags (g gold, a adjudicate, e escalated, q qualification), item.
-- A lease stored before this layout (JSON, starting with '{') reads as it always did.
local FOLDED = '1'
local FOLD_FLAGS = {g = 'gold', a = 'adjudicate', e = 'escalated', q = 'qualification'}

local function order_letters(order)
  local letters = {}
  for i, index in ipairs(order) do letters[i] = string.char(65 + index) end
  return table.concat(letters)
end

local function fold_lease(k, token, lease, answer)
  local flags = ''
  for letter, name in pairs(FOLD_FLAGS) do
    if lease[name] == true then flags = flags .. letter end
  end
  redis.call('HSET', k.leases, token, table.concat({
    FOLDED, answer.state, answer.seq, string.format('%d', answer.at), answer.active,
    answer.decision, answer.late and 'late' or '', lease.expert,
    type(lease.day) == 'string' and lease.day or '',
    json_ms(lease.assigned_at), json_ms(lease.expires_at),
    answer.delivered and string.format('%d', answer.delivered) or '',
    answer.opened and string.format('%d', answer.opened) or '', lease.item_seq,
    order_letters(lease.order), flags, lease.item}, '|'))
  redis.call('HDEL', k.state, token)
  redis.call('HDEL', k.outcomes, token)
  redis.call('HDEL', k.marks, 'delivered:' .. token, 'opened:' .. token)
end

-- A folded lease's fields: the first `n` split at '|', then the rest (the item).
local function unfold(text, n)
  local fields, from = {}, 1
  for i = 1, n do
    local bar = string.find(text, '|', from, true)
    fields[i] = string.sub(text, from, bar - 1)
    from = bar + 1
  end
  fields[n + 1] = string.sub(text, from)
  return fields
end

local function folded_lease(token, f)
  local order = {}
  for i = 1, #f[15] do order[i] = string.byte(f[15], i) - 65 end
  local lease = {token = token, expert = f[8], day = f[9] ~= '' and f[9] or nil,
                 assigned_at = tonumber(f[10]), expires_at = tonumber(f[11]),
                 item_seq = tonumber(f[14]), order = order, item = f[17],
                 gold = false, adjudicate = false, escalated = false}
  for i = 1, #f[16] do lease[FOLD_FLAGS[string.sub(f[16], i, i)]] = true end
  return lease
end

-- A lease as stored, either layout: the lease (a table), its state, its first outcome as
-- `outcomes` holds it (seq|answered_at|active|decision[|late]), delivered and opened (ms);
-- nil for a token never leased.
local function stored_lease(k, token)
  local stored = redis.call('HGET', k.leases, token)
  if not stored then return nil end
  if string.sub(stored, 1, 1) == '{' then
    local marks = redis.call('HMGET', k.marks, 'delivered:' .. token, 'opened:' .. token)
    return cjson.decode(stored), redis.call('HGET', k.state, token),
      redis.call('HGET', k.outcomes, token) or nil, tonumber(marks[1]), tonumber(marks[2])
  end
  local f = unfold(stored, 16)
  local outcome = f[3] .. '|' .. f[4] .. '|' .. f[5] .. '|' .. f[6] .. (f[7] ~= '' and '|' .. f[7] or '')
  return folded_lease(token, f), f[2], outcome, tonumber(f[12]), tonumber(f[13])
end

-- Whether an item may still be shown: in a queue (open, asked again, adjudication, gold),
-- being adjudicated, or a slot of it held (taken beyond done). Redis keeps the body of an
-- archived item only while it is (trim_archived.lua, record.lua); a finished item's body is read
-- from the archive if it is ever shown again (adapters/redis/leases.py).
local function in_play(k, item)
  for _, queue in ipairs({k.open, k.esc, k.adjq, k.gold}) do
    if redis.call('ZSCORE', queue, item) then return true end
  end
  if redis.call('SISMEMBER', k.adjudicating, item) == 1 then return true end
  return tonumber(redis.call('HGET', k.taken, item) or '0')
    > tonumber(redis.call('HGET', k.done, item) or '0')
end

-- End a live lease as `state` (expired, undeliverable): its slot back in the pool, counted;
-- returns the lease, or nil when it was not live.
local function end_lease(k, token, state)
  if redis.call('HGET', k.state, token) ~= 'live' then return nil end
  local lease = cjson.decode(redis.call('HGET', k.leases, token))
  redis.call('HSET', k.state, token, state)
  redis.call('ZREM', k.expiry, token)
  if redis.call('HGET', k.active, lease.expert) == token then
    redis.call('HDEL', k.active, lease.expert)
  end
  if lease.adjudicate then
    redis.call('SREM', k.adjudicating, lease.item)
    redis.call('ZADD', k.adjq, lease.assigned_at, lease.item)  -- back in the adjudicators' queue
  elseif not lease.gold then
    reopen(k, lease.item, lease.item_seq)
  end
  redis.call('HINCRBY', k.counts, state, 1)
  return lease
end

-- End a live lease whose time ran out, with its own event; returns true when it did.
local function expire_lease(k, token, at_iso, campaign)
  local lease = end_lease(k, token, 'expired')
  if not lease then
    redis.call('ZREM', k.expiry, token)
    return false
  end
  append_event(k.seq, k.log, json_with({
    actor = 'system', at = at_iso, campaign = campaign, expert = lease.expert, item = lease.item,
    lease = token, type = 'lease_expired'},
    '"payload":{"expires_at":' .. json_ms(lease.expires_at) .. '}'))
  return true
end

-- Route order (reference: core/domain/rules.py `queue_score`, `words`, `disagreement`).
local QUEUE_SPAN = 67108864  -- 2^26
local CONFIDENCE_FLOOR = 1000000

-- The keys of a table (a set), in no particular order.
local function pairs_of(set)
  local key = nil
  return function()
    key = next(set, key)
    return key
  end
end

local function round(x)
  return x >= 0 and math.floor(x + 0.5) or -math.floor(-x + 0.5)
end

local function words(text)
  local set = {}
  for word in string.gmatch(string.lower(text), '%w+') do set[word] = true end
  return set
end

local function disagreement(texts)
  local total, pairs = 0, 0
  for i = 1, #texts do
    for j = i + 1, #texts do
      local a, b = words(texts[i]), words(texts[j])
      local both, either = 0, 0
      for word in pairs_of(a) do
        either = either + 1
        if b[word] then both = both + 1 end
      end
      for word in pairs_of(b) do if not a[word] then either = either + 1 end end
      total = total + (either > 0 and 1 - both / either or 0)
      pairs = pairs + 1
    end
  end
  if pairs == 0 then return 0 end
  return round(total / pairs * 1000) / 1000
end

local function queue_key(order, confidence, texts)
  if order == 'least_confident' then
    return CONFIDENCE_FLOOR + math.max(round((confidence or 0) * 1000), -CONFIDENCE_FLOOR)
  end
  if order == 'most_disagreement' then return 1000 - round(disagreement(texts) * 1000) end
  return nil
end

local function queue_score(key, seq)
  if key == nil then return seq end
  return key * QUEUE_SPAN + seq
end

-- Every key of a campaign shares its hash tag, so a script is handed one key (KEYS[1], the
-- campaign's `meta`) and names the rest from its prefix: fewer arguments to send, one slot.
local function keyring()
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - 4)
  return setmetatable({}, {__index = function(ring, name)
    local key = prefix .. name
    rawset(ring, name, key)
    return key
  end})
end
