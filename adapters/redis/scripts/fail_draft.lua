-- A drafting job that did not give a draft, with its `draft_failed` event.
-- ARGV[1]: a JSON object: job, model, event (the draft_failed body), then either
--   aside = true: the item is set aside (counted; `campaign redraft` queues it again), or
--   paused = "<reason>": drafting for the campaign waits for the coordinator, the job is queued
--   again, and the event is written only by the first worker to pause it.
-- Returns: aside | paused | duplicate (the slot has its draft already; nothing written).
local k = keyring()
local req = cjson.decode(ARGV[1])
local job = req.job
local item = string.match(job, '^(.*)\t')
redis.call('ZREM', k['drun:' .. req.model], job)
if redis.call('HEXISTS', k.dslots, job) == 1 or redis.call('HEXISTS', k.dplans, item) == 0 then
  return 'duplicate'
end

if req.paused then
  redis.call('ZADD', k['dq:' .. req.model], 0, job)
  if redis.call('HSETNX', k.meta, 'drafting_paused', req.paused) == 1 then
    append_event(k.seq, k.log, req.event)
  end
  return 'paused'
end

append_event(k.seq, k.log, req.event)
if redis.call('SADD', k.daside, item) == 1 then
  local models = cjson.decode(redis.call('HGET', k.dplans, item)).models
  for slot = 1, #models do redis.call('ZREM', k['dq:' .. models[slot]], item .. '\t' .. (slot - 1)) end
  redis.call('HINCRBY', k.counts, 'drafting_pending', -1)
  redis.call('HINCRBY', k.counts, 'drafting_failed', 1)
end
return 'aside'
