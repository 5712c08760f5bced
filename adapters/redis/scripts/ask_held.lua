-- Offers as a channel finds them: ARGV[1] `expert` (ARGV[2] an expert id: their offers of
-- pending asks, oldest ask first; offers of asks no longer pending leave the set), `next`
-- (the same, and ARGV[3] `<channel> <now ms>`: the first offer not answered, not delivered
-- and not being pushed is claimed for that channel, `pushing:<token>` = `next <channel> <ms>`,
-- so the push leaves it there and exactly one of them shows it; its row is as read before the
-- claim) or `token` (ARGV[2] a token, whatever its ask's status). Per offer: token, ask,
-- expert, answered, offered, delivered (for `expert` and `next`, also a card being pushed
-- now), opened, then the ask's fields in the ARGV after those.
local k = keyring()
local mode = ARGV[1]
local first = mode == 'next' and 4 or 3
local fields = {}
for i = first, #ARGV do fields[#fields + 1] = ARGV[i] end
local tokens = {ARGV[2]}
if mode ~= 'token' then tokens = redis.call('ZRANGE', k['x:' .. ARGV[2]], 0, -1) end
local claim = mode == 'next' and ('next ' .. ARGV[3]) or nil
local rows = {}
for _, token in ipairs(tokens) do
  local id, expert = token_owner(k, token)
  if id then
    local a = ask_keys(k, id)
    if mode ~= 'token' and redis.call('HGET', a.ask, 'status') ~= 'pending' then
      redis.call('ZREM', k['x:' .. ARGV[2]], token)
    else
      local row = held_row(k, token, id, expert, a, fields, mode ~= 'token')
      rows[#rows + 1] = row
      if claim and row[4] == 0 and row[6] == '' then
        redis.call('HSET', k.marks, 'pushing:' .. token, claim)
        claim = nil
      end
    end
  end
end
return rows
