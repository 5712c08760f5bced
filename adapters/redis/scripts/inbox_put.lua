-- Keep a platform request once: a resend of the same request id within the ttl is dropped.
-- KEYS[1]: the inbox stream; KEYS[2]: the request's seen-marker.
-- ARGV[1]: marker ttl (ms); ARGV[2]: lane; ARGV[3]: the request body; ARGV[4]: kept at (ms).
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'l', ARGV[2], 'b', ARGV[3], 'a', '0', 't', ARGV[4])
return 1
