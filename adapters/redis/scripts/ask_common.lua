-- Shared by the ask_* scripts (prepended after common.lua by adapters/redis/asks.py). Every
-- key is under the `asks` log's hash tag: KEYS[1] is its `meta`, the rest are named from it.

-- One ask's keys: its hash, its answers (expert -> AskAnswer JSON), its offers (expert -> token).
local function ask_keys(k, id)
  return {ask = k['ask:' .. id], answers = k['ask:' .. id .. ':answers'],
          offers = k['ask:' .. id .. ':offers']}
end

-- An event of this ask: appended to the log, its seq kept in the ask's list for AskView.events.
local function ask_event(k, a, body)
  local seq = append_event(k.seq, k.log, body)
  redis.call('HSET', a.ask, 'seqs', redis.call('HGET', a.ask, 'seqs') .. ',' .. seq)
  return seq
end

-- `tokens` holds `<ask> <expert> <identities, comma-separated>` per token.
local function token_owner(k, token)
  local held = redis.call('HGET', k.tokens, token)
  if not held then return nil end
  local id, expert, ids = string.match(held, '^(%S+) (%S+) ?(%S*)$')
  return id, expert, ids
end

-- An offer as a channel reads it: token, ask, expert, answered (0/1), its offered, delivered
-- and opened marks, then the ask's `fields` ('' for each missing). With `pushed_counts`, a card
-- a worker is pushing now (`pushing:<token>`, until its delivery is marked) counts as
-- delivered, so the next card after an answer is not that one sent a second time (the mark
-- is the push's ms, or `next <channel> <ms>` when an answer's next card claimed it).
local function held_row(k, token, id, expert, a, fields, pushed_counts)
  local values = redis.call('HMGET', a.ask, unpack(fields))
  local marks = redis.call('HMGET', k.marks, 'offered:' .. token, 'delivered:' .. token,
                           'opened:' .. token, 'pushing:' .. token)
  local pushing = pushed_counts and marks[4] and string.match(marks[4], '(%d+)$')
  local delivered = marks[2] or pushing or ''
  local row = {token, id, expert, redis.call('HEXISTS', a.answers, expert),
               marks[1] or '', delivered, marks[3] or ''}
  for _, v in ipairs(values) do row[#row + 1] = v or '' end
  return row
end

-- Offer an ask to experts not offered it yet: a token each, the expert's open set, and one
-- delivery per chat account. Returns how many were new.
local function offer(k, id, a, offers, now)
  local created = redis.call('HGET', a.ask, 'created_at')
  local added = 0
  for _, o in ipairs(offers) do
    if redis.call('HSETNX', a.offers, o.expert, o.token) == 1 then
      redis.call('HSET', k.tokens, o.token, id .. ' ' .. o.expert .. ' ' .. table.concat(o.ids, ','))
      redis.call('HSET', k.marks, 'offered:' .. o.token, now)
      redis.call('ZADD', k['x:' .. o.expert], created, o.token)
      for _, identity in ipairs(o.ids) do
        redis.call('XADD', k.deliveries, '*', 'token', o.token, 'expert', o.expert,
                   'identity', identity, 'ask', id)
      end
      added = added + 1
    end
  end
  return added
end

-- Who is left to offer the ask to once they are available (JSON text of a list of ids); the
-- `later` set is scored by when a tick last looked, so every tick looks at the longest unseen.
local function keep_later(k, id, a, later_json, waiting, now)
  redis.call('HSET', a.ask, 'later', later_json, 'waiting', waiting)
  if later_json == '[]' then
    redis.call('ZREM', k.later, id)
  else
    redis.call('ZADD', k.later, now, id)
  end
end

-- The ask takes no more offers: out of the pending sets and every expert's open set; a
-- notice for each card still waiting on an answer (`why`: decided, withdrawn, expired); and,
-- unless the asker withdrew it, its callback queued.
local function finish(k, id, a, why)
  redis.call('ZREM', k.pending, id)
  redis.call('ZREM', k.later, id)
  local offers = redis.call('HGETALL', a.offers)
  for i = 1, #offers, 2 do
    local expert, token = offers[i], offers[i + 1]
    redis.call('ZREM', k['x:' .. expert], token)
    if redis.call('HEXISTS', a.answers, expert) == 0 then
      local _, _, ids = token_owner(k, token)
      for identity in string.gmatch(ids or '', '[^,]+') do
        redis.call('XADD', k.notices, '*', 'token', token, 'expert', expert,
                   'identity', identity, 'ask', id, 'why', why)
      end
    end
  end
  local url = redis.call('HGET', a.ask, 'callback')
  if why ~= 'withdrawn' and url and url ~= '' then
    redis.call('XADD', k.callbacks, '*', 'ask', id, 'url', url, 'delivery', 'cb-' .. id,
               'tries', '0', 'body', '')
  end
end
