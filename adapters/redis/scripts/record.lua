-- Record an expert's decision on a live lease with its event, exactly once.
-- A repeat (double tap, platform retry) returns the first outcome and records nothing.
-- ARGV: token, expert, now, effect, event_body, outcome_json, active_seconds, overlap, at_iso, campaign
local k = named({'meta', 'leases', 'state', 'outcomes', 'expiry', 'active', 'taken', 'open',
                 'done', 'counts', 'durations', 'seq', 'log'})
local token, expert, now, effect = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local state = redis.call('HGET', k.state, token)
if not state then return {'gone'} end
if state ~= 'live' then
  local first = redis.call('HGET', k.outcomes, token)
  if first then return {'duplicate', first} end
  return {state}
end
if redis.call('HGET', k.meta, 'state') == 'closed' then return {'closed'} end
local lease = cjson.decode(redis.call('HGET', k.leases, token))
if lease.expert ~= expert then return {'gone'} end
if lease.expires_at <= now then
  expire_lease(k, token, ARGV[9], ARGV[10])
  return {'expired'}
end

local seq = append_event(k.seq, k.log, ARGV[5])
redis.call('HSET', k.state, token, effect)
redis.call('HSET', k.outcomes, token, seq .. '|' .. ARGV[6])
redis.call('ZREM', k.expiry, token)
if redis.call('HGET', k.active, expert) == token then redis.call('HDEL', k.active, expert) end

if effect == 'answered' or effect == 'none_acceptable' then
  redis.call('HINCRBY', k.counts, 'answers', 1)
  if effect == 'none_acceptable' then redis.call('HINCRBY', k.counts, 'none_acceptable', 1) end
  if not lease.gold then
    if redis.call('HINCRBY', k.done, lease.item, 1) == tonumber(ARGV[8]) then
      redis.call('HINCRBY', k.counts, 'done', 1)
    end
  end
  redis.call('LPUSH', k.durations, ARGV[7])
  redis.call('LTRIM', k.durations, 0, 199)
else
  if not lease.gold then reopen(k.taken, k.open, lease.item, lease.item_seq) end
  redis.call('HINCRBY', k.counts, effect, 1)
end
return {'recorded', seq}
