-- Note once, with its event if one is given: `delivered` (once per token, and its event once
-- per channel) and `opened` of a pending ask's offer; `rationale`, a line of why after this
-- expert's recorded answer. ARGV: token, what, at, event_body, expert ('' = any), channel
local k = keyring()
local token, what, at, body, expert, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
                                                ARGV[6]
local id, owner = token_owner(k, token)
if not id or (expert ~= '' and owner ~= expert) then return 0 end
local a = ask_keys(k, id)
if what == 'rationale' then
  if redis.call('HEXISTS', a.answers, owner) == 0 then return 0 end
elseif redis.call('HGET', a.ask, 'status') ~= 'pending' then
  return 0
end
local mark = what .. ':' .. token
if what == 'delivered' then
  redis.call('HSETNX', k.marks, mark, at)
  redis.call('HDEL', k.marks, 'pushing:' .. token)
  mark = mark .. ':' .. channel
end
if redis.call('HSETNX', k.marks, mark, at) == 0 then return 0 end
if body ~= '' then ask_event(k, a, body) end
return 1
