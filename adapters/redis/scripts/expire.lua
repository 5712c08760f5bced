-- Return the slots of leases whose time ran out to the pool, each with a lease_expired event.
-- ARGV: now, at_iso, campaign, limit
local k = keyring()
local due = redis.call('ZRANGEBYSCORE', k.expiry, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local n = 0
for _, token in ipairs(due) do
  if expire_lease(k, token, ARGV[2], ARGV[3]) then n = n + 1 end
end
return n
