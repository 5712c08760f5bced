-- Shared by every script (prepended by the loader). Redis 6.2 has no function libraries.
-- Scripts that build events take one argument, a JSON object of named fields, and answer with
-- one; each rule below has its Python reference in core/rules.py, and tests/test_lua_rules.py
-- checks the two agree on random inputs.

-- JSON text kept as is by `canonical` (a number formatted by a rule, such as active seconds).
local RAW = {}
local function raw(text) return setmetatable({text}, RAW) end

-- A list, even when empty: cjson decodes `[]` and `{}` alike, to an empty table.
local ARRAY = {}
local function array(list) return setmetatable(list, ARRAY) end

-- Byte order, as Python sorts keys: Lua's `<` on strings follows the server's locale.
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- A string as Python's json.dumps(ensure_ascii=False) writes it: cjson also escapes '/' and DEL.
local function json_string(s)
  local text = cjson.encode(s)
  if not string.find(s, '[/\127]') then return text end
  text = string.gsub(text, '\\/', '/')  -- cjson writes no bare '/', so each '\/' is an escape
  return (string.gsub(text, '(\\*)\\u007f', function(run)
    if #run % 2 == 0 then return run .. '\127' end  -- an odd run would be an escaped backslash
  end))
end

-- The canonical JSON of core.events.canonical (sorted keys, no spaces, UTF-8), so an event is
-- stored in the very bytes its hash is taken over. An empty table is an object unless marked
-- with `array`.
local function canonical(value)
  local kind = type(value)
  if kind == 'string' then return json_string(value) end
  if kind == 'number' then
    if value == math.floor(value) and math.abs(value) < 2^53 then
      return string.format('%d', value)
    end
    return string.format('%.17g', value)
  end
  if kind ~= 'table' then return cjson.encode(value) end  -- booleans, cjson.null
  if getmetatable(value) == RAW then return value[1] end
  local parts = {}
  if #value > 0 or getmetatable(value) == ARRAY then
    for i, v in ipairs(value) do parts[i] = canonical(v) end
    return '[' .. table.concat(parts, ',') .. ']'
  end
  local names = {}
  for name in pairs(value) do names[#names + 1] = name end
  table.sort(names, before)
  for i, name in ipairs(names) do parts[i] = json_string(name) .. ':' .. canonical(value[name]) end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Rules (references in core/rules.py).

-- An expert's time on a task counts from the first touch, else the card shown, else the lease.
local function started_at(opened, delivered, assigned)
  return opened or delivered or assigned
end

-- Active seconds, capped at the time limit, to the millisecond; written as Python writes that
-- float (`30.0`, `12.34`), since the event is canonical JSON.
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

-- Give a slot back: the item is offered again, at its original place in the queue.
local function reopen(taken_key, open_key, item, item_seq)
  local left = redis.call('HINCRBY', taken_key, item, -1)
  if left < 0 then redis.call('HSET', taken_key, item, 0) end
  redis.call('ZADD', open_key, item_seq, item)
end

-- End a live lease whose time ran out, with its own event; returns true when it did.
local function expire_lease(k, token, at_iso, campaign)
  if redis.call('HGET', k.state, token) ~= 'live' then
    redis.call('ZREM', k.expiry, token)
    return false
  end
  local lease = cjson.decode(redis.call('HGET', k.leases, token))
  redis.call('HSET', k.state, token, 'expired')
  redis.call('ZREM', k.expiry, token)
  if redis.call('HGET', k.active, lease.expert) == token then
    redis.call('HDEL', k.active, lease.expert)
  end
  if not lease.gold then reopen(k.taken, k.open, lease.item, lease.item_seq) end
  redis.call('HINCRBY', k.counts, 'expired', 1)
  append_event(k.seq, k.log, canonical({
    actor = 'system', at = at_iso, campaign = campaign, expert = lease.expert, item = lease.item,
    lease = token, payload = {expires_at = lease.expires_at}, type = 'lease_expired'}))
  return true
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
