-- Offers as a channel finds them: ARGV[1] `expert` (ARGV[2] an expert id: their offers of
-- pending asks, oldest ask first; offers of asks no longer pending leave the set) or `token`
-- (ARGV[2] a token, whatever its ask's status). Per offer: token, ask, expert, answered,
-- offered, delivered (for `expert`, also a card being pushed now), opened, then the ask's
-- fields in ARGV[3..].
local k = keyring()
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local tokens = {ARGV[2]}
if ARGV[1] == 'expert' then tokens = redis.call('ZRANGE', k['x:' .. ARGV[2]], 0, -1) end
local rows = {}
for _, token in ipairs(tokens) do
  local id, expert = token_owner(k, token)
  if id then
    local a = ask_keys(k, id)
    if ARGV[1] == 'expert' and redis.call('HGET', a.ask, 'status') ~= 'pending' then
      redis.call('ZREM', k['x:' .. ARGV[2]], token)
    else
      rows[#rows + 1] = held_row(k, token, id, expert, a, fields, ARGV[1] == 'expert')
    end
  end
end
return rows
