-- Save the sealer's hashes and move the chain head forward, never back.
-- ARGV: head_seq, head_hash, then seq, hash pairs
local k = keyring()
local head = redis.call('GET', k.head)
local head_seq = head and tonumber(string.match(head, '^%d+')) or 0
if head_seq >= tonumber(ARGV[1]) then return 0 end
-- Never past a gap: a sealer that read the head on one master and the events on another (a
-- failover between its reads) would leave events unsealed below the head for good.
if ARGV[3] and tonumber(ARGV[3]) > head_seq + 1 then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', k.hashes, ARGV[i], ARGV[i + 1]) end
redis.call('SET', k.head, ARGV[1] .. ' ' .. ARGV[2])
return 1
