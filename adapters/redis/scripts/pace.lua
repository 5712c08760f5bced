-- Reserve the next send slot of one rate-limited thing, `interval` ms after the last one handed
-- out, on Redis's own clock so processes on different machines share one timeline.
-- KEYS[1]: the next free slot (ms); ARGV[1]: interval (ms). Returns ms to wait for the slot.
-- TIME before a write is allowed: scripts replicate their effects (Redis >= 5 by default).
local interval = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], slot + interval, 'PX', slot + interval - now + 1000)
return slot - now
