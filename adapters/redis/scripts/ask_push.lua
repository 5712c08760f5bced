-- Which queued cards are still worth pushing, in one call for a batch. ARGV[1]: now (ms),
-- ARGV[2]: how many ask fields follow (ARGV[3..]); then pairs of token and channel. Per pair
-- whose offer's ask is pending, not answered by its expert and not shown on that channel yet
-- (the expert's answer to another ask may have shown it as their next card, or claimed it to
-- show now: ask_held.lua's `next`, for a minute at most): the channel, then ask_held.lua's
-- row; and the token is noted `pushing:` until its delivery is marked.
local k = keyring()
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local fields = {}
for i = 3, n + 2 do fields[#fields + 1] = ARGV[i] end

-- An answer's next card is being shown on this channel (claimed under a minute ago).
local function shown_next(token, channel)
  local claim = redis.call('HGET', k.marks, 'pushing:' .. token)
  local on, at = string.match(claim or '', '^next (%S+) (%d+)$')
  return on == channel and now - tonumber(at) < 60000
end

local rows = {}
for i = n + 3, #ARGV, 2 do
  local token, channel = ARGV[i], ARGV[i + 1]
  local id, expert = token_owner(k, token)
  if id then
    local a = ask_keys(k, id)
    if redis.call('HGET', a.ask, 'status') == 'pending'
        and redis.call('HEXISTS', a.answers, expert) == 0
        and redis.call('HEXISTS', k.marks, 'delivered:' .. token .. ':' .. channel) == 0
        and not shown_next(token, channel) then
      rows[#rows + 1] = {channel, unpack(held_row(k, token, id, expert, a, fields))}
      redis.call('HSETNX', k.marks, 'pushing:' .. token, ARGV[1])
    end
  end
end
return rows
