-- Keep an expert's qualification result with its `qualified` event, once.
-- ARGV: expert, the result (JSON), the event body. Returns 1, or 0 when already decided.
local k = keyring()
local expert, result, body = ARGV[1], ARGV[2], ARGV[3]
local before = redis.call('HGET', k.qualified, expert)
if before and cjson.decode(before).state ~= 'in_progress' then return 0 end
redis.call('HSET', k.qualified, expert, result)
append_event(k.seq, k.log, body)
return 1
