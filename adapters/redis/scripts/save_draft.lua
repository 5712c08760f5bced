-- Record one model draft of one slot, exactly once, with its `drafted` event; when it is the
-- item's last, write the item whole (an `item_ready` event) and offer it to experts.
-- ARGV[1]: a JSON object: job ("item\tslot"), model, draft (the draft's JSON text), text_sha,
--   retry (true: a second ask after an identical draft), event (the drafted event's body),
--   ready (the item_ready event's body without its closing `,"payload":...}`), order? (the
--   campaign's route order), auto_at? (route.auto_accept's least confidence) with auto (the
--   auto_accepted event's body, open like `ready`).
-- Returns: recorded | ready | duplicate (the slot has its draft, or the item was set aside:
--   counted as discarded) | identical (the same text as another draft of the item; nothing kept).
local k = keyring()
local req = cjson.decode(ARGV[1])
local job, model = req.job, req.model
local item, slot = string.match(job, '^(.*)\t(%d+)$')
local running = k['drun:' .. model]

local plan_json = redis.call('HGET', k.dplans, item)
if not plan_json or redis.call('HEXISTS', k.dslots, job) == 1
    or redis.call('SISMEMBER', k.daside, item) == 1 then
  redis.call('ZREM', running, job)
  redis.call('HINCRBY', k.counts, 'drafts_discarded', 1)
  return 'duplicate'
end
local texts = redis.call('HGET', k.dtexts, item) or ''
if string.find(texts, req.text_sha, 1, true) then return 'identical' end

append_event(k.seq, k.log, req.event)
redis.call('HSET', k.dslots, job, req.draft)
redis.call('HSET', k.dtexts, item, texts .. req.text_sha .. ',')
redis.call('ZREM', running, job)
if redis.call('HINCRBY', k.dleft, item, -1) > 0 then return 'recorded' end

-- The last draft: the item as experts will see it, given drafts first, then the slots in order.
local plan = cjson.decode(plan_json)
local drafts = plan.given
for i = 0, #plan.models - 1 do
  local field = item .. '\t' .. i
  local draft = redis.call('HGET', k.dslots, field)
  drafts = drafts == '' and draft or drafts .. ',' .. draft
  redis.call('HDEL', k.dslots, field)
end
local whole = string.sub(plan.base, 1, -2) .. ',"drafts":[' .. drafts .. ']}'
local seq = append_event(k.seq, k.log, req.ready .. ',"payload":{"item":' .. whole .. '}}')
redis.call('HSET', k.items, item, seq .. ',' .. plan.n_drafts .. ',' .. plan.gold)

-- Offered in the campaign's route order, or accepted by the model when it is confident enough
-- and the item is not in the audit sample.
local confidence, texts = nil, {}
for _, draft in ipairs(cjson.decode('[' .. drafts .. ']')) do
  texts[#texts + 1] = draft.text
  local c = draft.confidence
  if type(c) == 'number' and (confidence == nil or c < confidence) then confidence = c end
end
if req.auto_at and plan.gold == 0 and confidence and confidence >= req.auto_at
    and redis.call('SISMEMBER', k.audit, item) == 0 then
  append_event(k.seq, k.log, req.auto .. ',"payload":' .. json_with(
    {decision = {type = 'verify', verdict = 'accept'}, draft = 0, threshold = req.auto_at},
    '"confidence":' .. cjson.encode(confidence)) .. '}')
  redis.call('HINCRBY', k.counts, 'auto_accepted', 1)
  redis.call('HINCRBY', k.counts, 'done', 1)
else
  local key = queue_key(req.order or 'file', confidence, texts)
  local score = queue_score(key, seq)
  if key then redis.call('HSET', k.qscore, item, score) end
  redis.call('ZADD', plan.gold == 1 and k.gold or k.open, score, item)
end
redis.call('HDEL', k.dplans, item)
redis.call('HDEL', k.dleft, item)
redis.call('HDEL', k.dtexts, item)
redis.call('HINCRBY', k.counts, 'drafting_pending', -1)
redis.call('HINCRBY', k.counts, 'drafting_drafted', 1)
return 'ready'
