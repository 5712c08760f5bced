-- Post an ask with its `ask_posted` event and first offers, unless its call id was posted
-- already: then the first ask (`same`), or `conflict` when the body differs.
-- ARGV[1]: JSON {id, call, sha, ttl_ms, spec, callback, created_at, expires_at, offers:
-- [{expert, token, ids}], later (JSON text), waiting, body}
local k = keyring()
local req = cjson.decode(ARGV[1])
local call = k['call:' .. req.call]
local found = redis.call('GET', call)
if found then
  local id, sha = string.match(found, '^(%S+) (%S+)$')
  return {sha == req.sha and 'same' or 'conflict', id}
end
redis.call('SET', call, req.id .. ' ' .. req.sha, 'PX', req.ttl_ms)
local a = ask_keys(k, req.id)
redis.call('HSET', a.ask, 'spec', req.spec, 'callback', req.callback, 'status', 'pending',
           'created_at', req.created_at, 'expires_at', req.expires_at, 'stage', 0, 'seqs', '')
local seq = append_event(k.seq, k.log, req.body)
redis.call('HSET', a.ask, 'seqs', seq)
redis.call('ZADD', k.pending, req.expires_at, req.id)
redis.call('ZADD', k.all, req.created_at, req.id)
offer(k, req.id, a, req.offers, req.created_at)
keep_later(k, req.id, a, req.later, req.waiting, req.created_at)
return {'created', req.id}
