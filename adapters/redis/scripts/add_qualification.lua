-- Store a campaign's qualification items, each as its own `qualification_item_added` event, in
-- file order; they never enter the open or gold queues, only the qualification queue.
-- ARGV: count, then per item: id, n_drafts, event body.
-- Returns how many were stored; 0 (and nothing stored) when the campaign has some already.
local k = keyring()
local n = tonumber(ARGV[1])
if redis.call('EXISTS', k.qual) == 1 then return 0 end
for i = 0, n - 1 do
  local base = 2 + i * 3
  local id = ARGV[base]
  local seq = append_event(k.seq, k.log, ARGV[base + 2])
  redis.call('HSET', k.qitems, id, seq .. ',' .. ARGV[base + 1])
  redis.call('ZADD', k.qual, i, id)
end
return n
