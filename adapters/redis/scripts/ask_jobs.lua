-- The callbacks whose retry is due go back into the callbacks stream (ARGV: now, count), so
-- any worker sends them; one script, so two workers never both requeue one.
local k = keyring()
local due = redis.call('ZRANGEBYSCORE', k.cbretry, '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job in ipairs(due) do
  redis.call('ZREM', k.cbretry, job)
  local fields = cjson.decode(job)
  redis.call('XADD', k.callbacks, '*', 'ask', fields.ask, 'url', fields.url,
             'delivery', fields.delivery, 'tries', fields.tries, 'body', fields.body)
end
return #due
