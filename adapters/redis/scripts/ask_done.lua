-- Finish a queue entry (ARGV: queue, group, entry); for a callback that failed, ARGV[4]
-- holds the job's JSON and ARGV[5] when to try again, or ARGV[6] the `ask_callback_failed`
-- event of a callback given up and ARGV[7] its ask.
local k = keyring()
local stream = k[ARGV[1]]
local acked = redis.call('XACK', stream, ARGV[2], ARGV[3])
redis.call('XDEL', stream, ARGV[3])
if acked == 0 then return 0 end
if ARGV[6] and ARGV[6] ~= '' then
  ask_event(k, ask_keys(k, ARGV[7]), ARGV[6])
elseif ARGV[4] and ARGV[4] ~= '' then
  redis.call('ZADD', k.cbretry, ARGV[5], ARGV[4])
end
return 1
