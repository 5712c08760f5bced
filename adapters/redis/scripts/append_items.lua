-- Store a batch of items, each as its own item_added event; all or none of the batch.
-- ARGV: count, then per item: id, n_drafts, gold (0/1), event body
local k = keyring()
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local id = ARGV[2 + i * 4]
  if redis.call('HEXISTS', k.items, id) == 1 then return {'exists', id} end
end
for i = 0, n - 1 do
  local base = 2 + i * 4
  local id, gold = ARGV[base], ARGV[base + 2]
  local seq = append_event(k.seq, k.log, ARGV[base + 3])
  redis.call('HSET', k.items, id, seq .. ',' .. ARGV[base + 1] .. ',' .. gold)
  redis.call('ZADD', gold == '1' and k.gold or k.open, seq, id)
end
redis.call('HINCRBY', k.counts, 'items', n)
return {'ok', n}
