-- Record an expert's decision on a live lease with its event, exactly once, in one step.
-- A repeat (double tap, platform retry) returns the first outcome and records nothing.
-- ARGV[1]: the request, a JSON object (built by store.py `_record_request`): token, expert,
--   now, effect, decision, overlap, time_limit_s, opened_at?, expect_drafts (0: no check), and
--   `event`, the answer's event as the service decided it. The script adds what only the lease
--   knows (item, shown order, gold, timings, late) and writes the whole event.
-- Returns a JSON object: status, and for `recorded` / `duplicate` seq, answered_at, active
--   (text), decision, late, day; for `invalid` drafts.
-- `now` is when the expert acted; a lease the expiry pass ended before then is answered late.
local k = keyring()
local req = cjson.decode(ARGV[1])
local token, expert, now, effect = req.token, req.expert, req.now, req.effect
local counted = effect == 'answered' or effect == 'none_acceptable'

local function reply(result) return cjson.encode(result) end

-- The first outcome, as stored: seq|answered_at|active|decision[|late].
local function first_outcome(stored)
  local f = {}
  for part in string.gmatch(stored, '[^|]+') do f[#f + 1] = part end
  return {status = 'duplicate', seq = tonumber(f[1]), answered_at = tonumber(f[2]),
          active = f[3], decision = f[4], late = f[5] == 'late'}
end

-- Take a free slot of the item back for a lease that had ended; false when none is free.
local function retake(item, overlap)
  local taken = tonumber(redis.call('HGET', k.taken, item) or '0')
  if not slot_free(taken, overlap) then return false end
  if not slot_free(redis.call('HINCRBY', k.taken, item, 1), overlap) then
    redis.call('ZREM', k.open, item)
  end
  return true
end

-- The event as written: the service's part, and the lease's.
local function answered_event(lease, late, active, delivered, opened)
  local event, payload = req.event, req.event.payload
  event.payload = nil
  event.item = lease.item
  payload.gold = lease.gold
  if late then payload.late = true end
  local timing = '"timing":{"active_seconds":' .. active .. ',"answered_at":' .. json_ms(now)
    .. ',"assigned_at":' .. json_ms(lease.assigned_at) .. ',"delivered_at":' .. json_ms(delivered)
    .. ',"opened_at":' .. json_ms(opened) .. '}'
  return json_with(event, '"payload":' .. json_with(payload, '"order":'
    .. json_indices(lease.order) .. ',' .. timing))
end

-- Counts, the item's progress and the campaign's task-time estimate.
local function tally(lease, late, active)
  if not counted then
    if not lease.gold and not late then reopen(k.taken, k.open, lease.item, lease.item_seq) end
    redis.call('HINCRBY', k.counts, effect, 1)
    return
  end
  local answers = redis.call('HINCRBY', k.counts, 'answers', 1)
  if effect == 'none_acceptable' then redis.call('HINCRBY', k.counts, 'none_acceptable', 1) end
  if not lease.gold and redis.call('HINCRBY', k.done, lease.item, 1) == req.overlap then
    redis.call('HINCRBY', k.counts, 'done', 1)
  end
  redis.call('LPUSH', k.durations, active)
  redis.call('LTRIM', k.durations, 0, 199)
  if refreshes_estimate(answers) then
    redis.call('HSET', k.counts, 'estimate_s', median(redis.call('LRANGE', k.durations, 0, -1)),
               'estimate_n', answers)
  end
end

local lease_json = redis.call('HGET', k.leases, token)
if not lease_json then return reply({status = 'gone'}) end
local lease = cjson.decode(lease_json)
if lease.expert ~= expert then return reply({status = 'gone'}) end  -- not theirs: say nothing
local state = redis.call('HGET', k.state, token)
local late = state == 'expired' and lease.expires_at > now
if state ~= 'live' and not late then
  local first = redis.call('HGET', k.outcomes, token)
  if first then return reply(first_outcome(first)) end
  return reply({status = state})
end
if redis.call('HGET', k.meta, 'state') == 'closed' then return reply({status = 'closed'}) end
if req.expect_drafts > 0 and req.expect_drafts ~= #lease.order then
  return reply({status = 'invalid', drafts = #lease.order})
end
if late then
  -- Acted before the deadline, handled after the expiry pass gave the slot back (a backlog):
  -- honoured while the item still has a free slot. A skip or flag needs none: it is back already.
  if counted and not lease.gold and not retake(lease.item, req.overlap) then
    return reply({status = 'taken'})
  end
  redis.call('HINCRBY', k.counts, 'expired', -1)
elseif lease.expires_at <= now then
  expire_lease(k, token, req.event.at, req.event.campaign)
  return reply({status = 'expired'})
end

local delivered = tonumber(redis.call('HGET', k.marks, 'delivered:' .. token))
local opened = req.opened_at or tonumber(redis.call('HGET', k.marks, 'opened:' .. token))
local active = active_seconds(now, started_at(opened, delivered, lease.assigned_at),
                              req.time_limit_s)
local seq = append_event(k.seq, k.log, answered_event(lease, late, active, delivered, opened))
redis.call('HSET', k.state, token, effect)
redis.call('HSET', k.outcomes, token, seq .. '|' .. string.format('%d', now) .. '|' .. active
  .. '|' .. req.decision .. (late and '|late' or ''))
redis.call('ZREM', k.expiry, token)
if redis.call('HGET', k.active, expert) == token then redis.call('HDEL', k.active, expert) end
tally(lease, late, active)
return reply({status = 'recorded', seq = seq, answered_at = now, active = active,
              decision = req.decision, day = lease.day, late = late})
