-- Record an expert's decision on a live lease with its event, exactly once, in one step.
-- A repeat (double tap, platform retry) returns the first outcome and records nothing.
-- The script finishes the event with what only the lease knows: item, shown order, timings.
-- ARGV: token, expert, now, effect, event_head (open object), payload_head (object members),
--       decision_type, overlap, at_iso, campaign, time_limit_s, opened_at or '',
--       expect_drafts (0: no check)
-- `now` is when the expert acted; a lease the expiry pass ended before then is answered late.
local k = keyring()
local token, expert, now, effect = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

-- Take a free slot of the item back for a lease that had ended; false when none is free.
local function retake(item, overlap)
  if tonumber(redis.call('HGET', k.taken, item) or '0') >= overlap then return false end
  if redis.call('HINCRBY', k.taken, item, 1) >= overlap then redis.call('ZREM', k.open, item) end
  return true
end

local lease_json = redis.call('HGET', k.leases, token)
if not lease_json then return {'gone'} end
local lease = cjson.decode(lease_json)
if lease.expert ~= expert then return {'gone'} end  -- someone else's task: say nothing of it
local state = redis.call('HGET', k.state, token)
local late = state == 'expired' and lease.expires_at > now
if state ~= 'live' and not late then
  local first = redis.call('HGET', k.outcomes, token)
  if first then return {'duplicate', first} end
  return {state}
end
if redis.call('HGET', k.meta, 'state') == 'closed' then return {'closed'} end
local expect = tonumber(ARGV[13])
if expect > 0 and expect ~= #lease.order then return {'invalid', #lease.order} end
if late then
  -- Acted before the deadline, handled after the expiry pass gave the slot back (a backlog):
  -- honoured while the item still has a free slot. A skip or flag needs none: it is back already.
  local counted = effect == 'answered' or effect == 'none_acceptable'
  if counted and not lease.gold and not retake(lease.item, tonumber(ARGV[8])) then
    return {'taken'}
  end
  redis.call('HINCRBY', k.counts, 'expired', -1)
elseif lease.expires_at <= now then
  expire_lease(k, token, ARGV[9], ARGV[10])
  return {'expired'}
end

local function ms(value) return value and string.format('%d', value) or 'null' end
local delivered = tonumber(redis.call('HGET', k.marks, 'delivered:' .. token))
local opened = tonumber(ARGV[12]) or tonumber(redis.call('HGET', k.marks, 'opened:' .. token))
local started = opened or delivered or lease.assigned_at
local active = string.format('%.3f', math.min(math.max(now - started, 0) / 1000,
                                              tonumber(ARGV[11])))
local order = {}
for i, index in ipairs(lease.order) do order[i] = string.format('%d', index) end

local seq = append_event(k.seq, k.log, ARGV[5] .. ',"item":' .. cjson.encode(lease.item)
  .. ',"payload":{' .. ARGV[6] .. ',"gold":' .. (lease.gold and 'true' or 'false')
  .. ',"order":[' .. table.concat(order, ',') .. ']'
  .. ',"timing":{"active_seconds":' .. active .. ',"answered_at":' .. ms(now)
  .. ',"assigned_at":' .. ms(lease.assigned_at) .. ',"delivered_at":' .. ms(delivered)
  .. ',"opened_at":' .. ms(opened) .. '}' .. (late and ',"late":true' or '') .. '}}')
redis.call('HSET', k.state, token, effect)
redis.call('HSET', k.outcomes, token, seq .. '|' .. ARGV[3] .. '|' .. active .. '|' .. ARGV[7]
  .. (late and '|late' or ''))
redis.call('ZREM', k.expiry, token)
if redis.call('HGET', k.active, expert) == token then redis.call('HDEL', k.active, expert) end

if effect == 'answered' or effect == 'none_acceptable' then
  local answers = redis.call('HINCRBY', k.counts, 'answers', 1)
  if effect == 'none_acceptable' then redis.call('HINCRBY', k.counts, 'none_acceptable', 1) end
  if not lease.gold then
    if redis.call('HINCRBY', k.done, lease.item, 1) == tonumber(ARGV[8]) then
      redis.call('HINCRBY', k.counts, 'done', 1)
    end
  end
  redis.call('LPUSH', k.durations, active)
  redis.call('LTRIM', k.durations, 0, 199)
  if answers <= 20 or answers % 10 == 0 then
    -- The estimate on the next cards: the median of the last 200 timed answers.
    local recent = redis.call('LRANGE', k.durations, 0, -1)
    for i, v in ipairs(recent) do recent[i] = tonumber(v) end
    table.sort(recent)
    redis.call('HSET', k.counts, 'estimate_s', recent[math.floor((#recent + 1) / 2)],
               'estimate_n', answers)
  end
else
  if not lease.gold and not late then reopen(k.taken, k.open, lease.item, lease.item_seq) end
  redis.call('HINCRBY', k.counts, effect, 1)
end
return {'recorded', seq, active, lease.day or '', late and 1 or 0}
