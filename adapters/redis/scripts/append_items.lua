-- Store a batch of items, each as its own item_added event; all or none of the batch.
-- ARGV: count, then per item: id, n_drafts, gold (0/1), event body, drafting plan ('' or JSON),
--   route order key ('' for file order), the auto_accepted event ('' unless the model decides
--   it), audited (1: confident but sampled for experts), its images' SHA-256s ("sha,sha" or
--   '': claim.lua names them in the assigned event); then how many of the batch's prompts
--   are conversations (exports pick their shape by it).
-- An item with a drafting plan waits for its model drafts (take_drafts.lua) instead of being
-- offered: its jobs, one per missing draft, go in its models' queues; the plan keeps what
-- save_draft.lua needs to write the item whole once the last draft is in.
local k = keyring()
local n = tonumber(ARGV[1])
local STRIDE = 9
for i = 0, n - 1 do
  local id = ARGV[2 + i * STRIDE]
  if redis.call('HEXISTS', k.items, id) == 1 then return {'exists', id} end
end
local waiting = 0
for i = 0, n - 1 do
  local base = 2 + i * STRIDE
  local id, gold, plan = ARGV[base], ARGV[base + 2], ARGV[base + 4]
  local key, auto = tonumber(ARGV[base + 5]), ARGV[base + 6]
  local seq = append_event(k.seq, k.log, ARGV[base + 3])
  redis.call('HSET', k.items, id, seq .. ',' .. ARGV[base + 1] .. ',' .. gold)
  if ARGV[base + 7] == '1' then redis.call('SADD', k.audit, id) end
  if ARGV[base + 8] ~= '' then redis.call('HSET', k.images, id, ARGV[base + 8]) end
  if auto ~= '' then
    append_event(k.seq, k.log, auto)
    redis.call('HINCRBY', k.counts, 'auto_accepted', 1)
    redis.call('HINCRBY', k.counts, 'done', 1)
  elseif plan == '' then
    local score = queue_score(key, seq)
    if key then redis.call('HSET', k.qscore, id, score) end
    redis.call('ZADD', gold == '1' and k.gold or k.open, score, id)
  else
    local decoded = cjson.decode(plan)
    local models = decoded.models
    redis.call('HSET', k.dplans, id, plan)
    redis.call('HSET', k.dleft, id, #models)
    if decoded.texts ~= '' then redis.call('HSET', k.dtexts, id, decoded.texts) end
    for slot = 1, #models do
      redis.call('ZADD', k['dq:' .. models[slot]], seq * 32 + slot - 1, id .. '\t' .. (slot - 1))
    end
    waiting = waiting + 1
  end
end
redis.call('HINCRBY', k.counts, 'items', n)
local conversations = tonumber(ARGV[2 + n * STRIDE])
if conversations > 0 then redis.call('HINCRBY', k.counts, 'conversations', conversations) end
if waiting > 0 then redis.call('HINCRBY', k.counts, 'drafting_pending', waiting) end
return {'ok', n}
