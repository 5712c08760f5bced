-- Try drafting again: every item set aside goes back in its models' queues (only the slots
-- still without a draft), and a pause on an endpoint's error is lifted.
-- ARGV[1]: the `redraft` event's body, left open: the script adds the count and closes it.
-- Returns the number of items queued again.
local k = keyring()
local items = redis.call('SMEMBERS', k.daside)
for _, item in ipairs(items) do
  local models = cjson.decode(redis.call('HGET', k.dplans, item)).models
  for slot = 1, #models do
    local job = item .. '\t' .. (slot - 1)
    if redis.call('HEXISTS', k.dslots, job) == 0 then redis.call('ZADD', k['dq:' .. models[slot]], 0, job) end
  end
end
redis.call('DEL', k.daside)
local was_paused = redis.call('HDEL', k.meta, 'drafting_paused')
if #items > 0 then
  redis.call('HINCRBY', k.counts, 'drafting_pending', #items)
  redis.call('HINCRBY', k.counts, 'drafting_failed', -#items)
end
if #items > 0 or was_paused == 1 then
  append_event(k.seq, k.log, ARGV[1] .. ',"payload":{"items":' .. #items .. '}}')
end
return #items
