-- Save the sealer's hashes and move the chain head forward, never back.
-- ARGV: head_seq, head_hash, then seq, hash pairs
local k = keyring()
local head = redis.call('GET', k.head)
if head and tonumber(string.match(head, '^%d+')) >= tonumber(ARGV[1]) then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', k.hashes, ARGV[i], ARGV[i + 1]) end
redis.call('SET', k.head, ARGV[1] .. ' ' .. ARGV[2])
return 1
