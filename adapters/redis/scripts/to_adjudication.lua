-- A coordinator sends an item to the adjudicators' queue, with its event; nothing when the
-- item is unknown, or waits there already (or is being adjudicated).
-- ARGV: item, now, the event body
-- Returns 1 when queued, 0 when it was there already, -1 for an unknown item.
local k = keyring()
local item, now, body = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if redis.call('HEXISTS', k.items, item) == 0 then return -1 end
if redis.call('ZSCORE', k.adjq, item) or redis.call('SISMEMBER', k.adjudicating, item) == 1 then
  return 0
end
redis.call('ZADD', k.adjq, now, item)
redis.call('HINCRBY', k.counts, 'awaiting_adjudication', 1)
append_event(k.seq, k.log, body)
return 1
