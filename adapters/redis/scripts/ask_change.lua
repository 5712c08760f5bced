-- Move a pending ask on (mode): withdraw | expire | reject (its deadline passed) | escalate
-- (offered wider, with a new deadline) | offer (to experts available now). Every mode but
-- withdraw applies only at the stage the caller read, timeouts only past the deadline, so
-- workers ticking side by side change it once. Returns `ok` or why not.
-- ARGV[1]: JSON {ask, mode, now, stage, body, comment, new_stage, expires_at, offers, later
-- (JSON text or null), waiting}
local k = keyring()
local req = cjson.decode(ARGV[1])
local a = ask_keys(k, req.ask)
local state = redis.call('HMGET', a.ask, 'status', 'stage', 'expires_at')
if not state[1] then return 'missing' end
if state[1] ~= 'pending' then return state[1] end
if req.mode ~= 'withdraw' then
  if tonumber(state[2]) ~= req.stage then return 'moved' end
  if req.mode ~= 'offer' and tonumber(state[3]) > req.now then return 'early' end
end
local ends = {withdraw = 'withdrawn', expire = 'expired', reject = 'rejected'}
if ends[req.mode] then
  ask_event(k, a, req.body)
  redis.call('HSET', a.ask, 'status', ends[req.mode], 'decided_at', req.now,
             'comment', req.comment)
  finish(k, req.ask, a, req.mode == 'withdraw' and 'withdrawn' or 'expired')
  return 'ok'
end
if req.mode == 'escalate' then
  ask_event(k, a, req.body)
  redis.call('HSET', a.ask, 'stage', req.new_stage, 'expires_at', req.expires_at)
  redis.call('ZADD', k.pending, req.expires_at, req.ask)
end
offer(k, req.ask, a, req.offers, req.now)
if type(req.later) == 'string' then keep_later(k, req.ask, a, req.later, req.waiting, req.now) end
return 'ok'
