-- Note once when a live task was delivered or opened, with its event.
-- ARGV: token, what (delivered|opened), at, event_body, expert ('' = the system, any lease;
-- otherwise only that expert's own lease is marked)
local k = keyring()
if redis.call('HGET', k.state, ARGV[1]) ~= 'live' then return 0 end
if ARGV[5] ~= '' and cjson.decode(redis.call('HGET', k.leases, ARGV[1])).expert ~= ARGV[5] then
  return 0
end
if redis.call('HSETNX', k.marks, ARGV[2] .. ':' .. ARGV[1], ARGV[3]) == 0 then return 0 end
return append_event(k.seq, k.log, ARGV[4])
