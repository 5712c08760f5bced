-- Lease one slot of one item to an expert, atomically: never more than `overlap` slots per item.
-- ARGV: expert, token, now, expires_at, shuffle (csv of 0..25), want_gold, overlap,
--       event_head (assigned body, open object), lease_head (lease JSON, open object),
--       at_iso, campaign
local k = named({'meta', 'items', 'open', 'gold', 'taken', 'leases', 'state', 'expiry', 'active',
                 'seq', 'log', 'durations', 'counts'})
local expert, token, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local overlap = tonumber(ARGV[7])

local state = redis.call('HGET', k.meta, 'state')
if state ~= 'active' then return {'inactive', state or 'missing'} end

local function item_body(item_seq)
  local entry = redis.call('XRANGE', k.log, '0-' .. item_seq, '0-' .. item_seq)
  return entry[1][2][2]
end

local function durations() return redis.call('LRANGE', k.durations, 0, 100) end

-- An expert holds one live task per campaign: asking again returns the same one.
local held = redis.call('HGET', k.active, expert)
if held then
  local ends = redis.call('ZSCORE', k.expiry, held)
  if ends and tonumber(ends) > now then
    local lease = redis.call('HGET', k.leases, held)
    return {'lease', lease, item_body(cjson.decode(lease).item_seq), durations()}
  end
  expire_lease(k, held, ARGV[10], ARGV[11])
end

local seen_key = KEYS[14]
local function pick(zkey)
  for start = 0, 4900, 100 do
    local ids = redis.call('ZRANGE', zkey, start, start + 99)
    if #ids == 0 then return nil end
    for _, id in ipairs(ids) do
      if redis.call('SISMEMBER', seen_key, id) == 0 then return id end
    end
  end
  return nil
end

local item, gold = nil, false
if ARGV[6] == '1' then
  item = pick(k.gold)
  gold = item ~= nil
end
if not item then item = pick(k.open) end
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
local tail = ',"item":' .. cjson.encode(item) .. ',"item_seq":' .. item_seq
  .. ',"order":' .. order_json .. ',"gold":' .. gold_json .. '}'
local lease = ARGV[9] .. tail

redis.call('SADD', seen_key, item)
redis.call('HSET', k.leases, token, lease)
redis.call('HSET', k.state, token, 'live')
redis.call('ZADD', k.expiry, tonumber(ARGV[4]), token)
redis.call('HSET', k.active, expert, token)
append_event(k.seq, k.log, ARGV[8] .. ',"item":' .. cjson.encode(item)
  .. ',"payload":{"expires_at":' .. ARGV[4] .. ',"gold":' .. gold_json
  .. ',"item_seq":' .. item_seq .. ',"order":' .. order_json .. '}}')
return {'lease', lease, item_body(item_seq), durations()}
