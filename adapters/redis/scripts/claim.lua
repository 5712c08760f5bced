-- Lease one slot of one item to an expert, atomically: never more than `overlap` slots per item.
-- ARGV: expert, token, now, expires_at, shuffle (csv of 0..25), want_gold, overlap,
--       event_head (assigned body, open object), lease_head (lease JSON, open object),
--       at_iso, campaign
local k = keyring()
local seen_key = KEYS[2]
local expert, token, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local overlap = tonumber(ARGV[7])

local state = redis.call('HGET', k.meta, 'state')
if state ~= 'active' then return {'inactive', state or 'missing'} end

local function item_body(item_seq)
  local entry = redis.call('XRANGE', k.log, '0-' .. item_seq, '0-' .. item_seq)
  return entry[1][2][2]
end

local function leased(lease_json)
  local estimate = redis.call('HMGET', k.counts, 'estimate_s', 'estimate_n')
  return {'lease', lease_json, item_body(cjson.decode(lease_json).item_seq),
          estimate[1] or '', estimate[2] or ''}
end

-- An expert holds one live task per campaign: asking again returns the same one.
local held = redis.call('HGET', k.active, expert)
if held then
  local ends = redis.call('ZSCORE', k.expiry, held)
  if ends and tonumber(ends) > now then return leased(redis.call('HGET', k.leases, held)) end
  expire_lease(k, held, ARGV[10], ARGV[11])
end

-- The first unseen item in queue order, in at most `limit` looks.
local function first_unseen(zkey, min, limit)
  local offset = 0
  while offset < limit do
    local found = redis.call('ZRANGEBYSCORE', zkey, min, '+inf', 'WITHSCORES', 'LIMIT', offset, 100)
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

local item, gold = nil, false
if ARGV[6] == '1' then
  item = pick(k.gold, 'g:' .. expert)
  gold = item ~= nil
end
if not item then item = pick(k.open, 'o:' .. expert) end
if not item then return {'empty'} end

local info = redis.call('HGET', k.items, item)
local comma1 = string.find(info, ',', 1, true)
local comma2 = string.find(info, ',', comma1 + 1, true)
local item_seq = tonumber(string.sub(info, 1, comma1 - 1))
local n_drafts = tonumber(string.sub(info, comma1 + 1, comma2 - 1))

if not gold then
  local taken = redis.call('HINCRBY', k.taken, item, 1)
  if taken >= overlap then redis.call('ZREM', k.open, item) end
end

local order = {}
for v in string.gmatch(ARGV[5], '%d+') do
  if tonumber(v) < n_drafts then order[#order + 1] = v end
end
local order_json = '[' .. table.concat(order, ',') .. ']'
local gold_json = gold and 'true' or 'false'
local lease = ARGV[9] .. ',"item":' .. cjson.encode(item) .. ',"item_seq":' .. item_seq
  .. ',"order":' .. order_json .. ',"gold":' .. gold_json .. '}'

redis.call('SADD', seen_key, item)
redis.call('HSET', k.leases, token, lease)
redis.call('HSET', k.state, token, 'live')
redis.call('ZADD', k.expiry, tonumber(ARGV[4]), token)
redis.call('HSET', k.active, expert, token)
append_event(k.seq, k.log, ARGV[8] .. ',"item":' .. cjson.encode(item)
  .. ',"payload":{"expires_at":' .. ARGV[4] .. ',"gold":' .. gold_json
  .. ',"item_seq":' .. item_seq .. ',"order":' .. order_json .. '}}')
return leased(lease)
