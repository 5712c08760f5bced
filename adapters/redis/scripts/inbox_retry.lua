-- A request whose handling failed goes to the back of the inbox with one more attempt, or,
-- past the last attempt, to the dead list for an operator; either way it leaves its old place.
-- KEYS[1]: the inbox stream; KEYS[2]: the dead list.
-- ARGV[1]: consumer group; ARGV[2]: entry id; ARGV[3]: lane; ARGV[4]: body; ARGV[5]: attempts
-- so far, this one included; ARGV[6]: the most attempts; ARGV[7]: when it was first kept.
local requeued = 0
if tonumber(ARGV[5]) < tonumber(ARGV[6]) then
  redis.call('XADD', KEYS[1], '*', 'l', ARGV[3], 'b', ARGV[4], 'a', ARGV[5], 't', ARGV[7])
  requeued = 1
else
  redis.call('RPUSH', KEYS[2], ARGV[4])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return requeued
