-- Everything submit needs to judge an answer: the lease, its state, first outcome, marks, item.
-- ARGV: token
local k = keyring()
local token = ARGV[1]
local lease, state, outcome, delivered, opened = stored_lease(k, token)
if not lease then return {} end
local entry = redis.call('XRANGE', k.log, '0-' .. lease.item_seq, '0-' .. lease.item_seq)
-- The lease as JSON, as claim.lua wrote it (its campaign: the hash tag of its keys).
lease.campaign = lease.campaign or string.match(KEYS[1], '{(.-)}')
local order = lease.order
lease.order = nil
return {json_with(lease, '"order":' .. json_indices(order)), state, outcome or '',
        delivered and string.format('%d', delivered) or '',
        opened and string.format('%d', opened) or '',
        entry[1] and entry[1][2][2] or redis.call('HGET', k.archived_items, lease.item_seq)}
