-- Let an expert take a campaign's qualification again: forget their result and their answers
-- (the log keeps both), with the coordinator's `requalified` event.
-- ARGV: expert, the event body. Returns 1, or 0 when there was nothing to forget.
local k = keyring()
local expert, body = ARGV[1], ARGV[2]
local forgot = redis.call('HDEL', k.qualified, expert) + redis.call('DEL', k['qual:' .. expert])
if forgot == 0 then return 0 end
append_event(k.seq, k.log, body)
return 1
