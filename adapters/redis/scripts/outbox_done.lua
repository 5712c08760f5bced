-- Take an outbox entry out only if it is the one that was sent: an entry owed again while the
-- drain was sending it (same key, new version) stays for the next drain.
-- KEYS[1]: the channel's outbox hash; ARGV[1]: the entry's key; ARGV[2]: its stored version.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
