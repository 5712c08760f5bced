-- End a live lease its channel could not show (the platform refused the card): the slot goes
-- back to the pool at once, like an expired lease, with the caller's event (`undeliverable`).
-- A lease answered, expired or given back already is left alone (returns 0).
-- ARGV: token, event body
local k = keyring()
local token = ARGV[1]
if redis.call('HGET', k.state, token) ~= 'live' then return 0 end
local lease = cjson.decode(redis.call('HGET', k.leases, token))
redis.call('HSET', k.state, token, 'undeliverable')  -- never shown: no tap can be late on it
redis.call('ZREM', k.expiry, token)
if redis.call('HGET', k.active, lease.expert) == token then
  redis.call('HDEL', k.active, lease.expert)
end
if not lease.gold then reopen(k.taken, k.open, lease.item, lease.item_seq) end
redis.call('HINCRBY', k.counts, 'undeliverable', 1)
append_event(k.seq, k.log, ARGV[2])
return 1
