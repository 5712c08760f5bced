-- Hand a worker up to `want` drafting jobs of one model, within the model's concurrency and
-- request rate across every worker. A job is held for `lease_ms` past when it may be sent;
-- a job whose holder died is queued again (its request may then go out twice; save_draft.lua
-- keeps one draft per slot).
-- ARGV: model, now, lease_ms, want, max_concurrency, interval_ms (0: no rate limit)
-- Returns a flat list: job ("item\tslot"), not_before (ms), the item's plan (JSON), ...
local k = keyring()
local model, now, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local want, most, interval = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local queue, running = k['dq:' .. model], k['drun:' .. model]

if redis.call('HGET', k.meta, 'state') == 'closed' then return {} end
if redis.call('HEXISTS', k.meta, 'drafting_paused') == 1 then return {} end

for _, job in ipairs(redis.call('ZRANGEBYSCORE', running, '-inf', now)) do
  redis.call('ZREM', running, job)
  local item = string.match(job, '^(.*)\t')
  if redis.call('HEXISTS', k.dslots, job) == 0 and redis.call('SISMEMBER', k.daside, item) == 0 then
    redis.call('ZADD', queue, 0, job)  -- first in line: it has waited longest
  end
end

local free = math.min(want, most - redis.call('ZCARD', running))
if free <= 0 then return {} end
local jobs = redis.call('ZRANGE', queue, 0, free - 1)
if #jobs == 0 then return {} end

local next_free = math.max(tonumber(redis.call('HGET', k.dpace, model) or '0'), now)
local out = {}
for _, job in ipairs(jobs) do
  local not_before = interval > 0 and next_free or now
  if interval > 0 then next_free = next_free + interval end
  redis.call('ZREM', queue, job)
  redis.call('ZADD', running, not_before + lease_ms, job)
  local item = string.match(job, '^(.*)\t')
  out[#out + 1] = job
  out[#out + 1] = not_before
  out[#out + 1] = redis.call('HGET', k.dplans, item) or ''
end
if interval > 0 then redis.call('HSET', k.dpace, model, next_free) end
return out
