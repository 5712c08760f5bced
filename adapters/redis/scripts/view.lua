-- Everything submit needs to judge an answer: the lease, its state, first outcome, marks, item.
-- ARGV: token
local k = keyring()
local token = ARGV[1]
local lease = redis.call('HGET', k.leases, token)
if not lease then return {} end
local item_seq = cjson.decode(lease).item_seq
local entry = redis.call('XRANGE', k.log, '0-' .. item_seq, '0-' .. item_seq)
return {lease, redis.call('HGET', k.state, token), redis.call('HGET', k.outcomes, token) or '',
        redis.call('HGET', k.marks, 'delivered:' .. token) or '',
        redis.call('HGET', k.marks, 'opened:' .. token) or '',
        entry[1] and entry[1][2][2] or redis.call('HGET', k.archived_items, item_seq)}
