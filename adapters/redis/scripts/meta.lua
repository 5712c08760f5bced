-- Create a campaign (ARGV: 'create', campaign_json, code, body) or change its state
-- (ARGV: 'state', new_state, '', body), with the event that says so.
local k = keyring()
if ARGV[1] == 'create' then
  if redis.call('EXISTS', k.meta) == 1 then return 0 end
  redis.call('HSET', k.meta, 'campaign', ARGV[2], 'code', ARGV[3], 'state', 'importing')
else
  if redis.call('EXISTS', k.meta) == 0 then return 0 end
  redis.call('HSET', k.meta, 'state', ARGV[2])
end
return append_event(k.seq, k.log, ARGV[4])
