-- Record an expert's decision on a live lease with its event, exactly once, in one step.
-- A repeat (double tap, platform retry) returns the first outcome and records nothing.
-- ARGV[1]: the request, a JSON object (built by store.py `_record_request`): token, expert,
--   now, effect, decision, overlap (the least judgments an item gets), time_limit_s, opened_at?,
--   expect_drafts (0: no check), judging? (vote, shown, most, share, share_ppm, max_spread,
--   rated, adjudicate: how a counted answer weighs in on its item's agreement),
--   reason_if_escalated?, and
--   `event`, the answer's event as the service decided it. The script adds what only the lease
--   knows (item, shown order, gold, timings, late) and writes the whole event.
-- Returns a JSON object: status (also `reason_needed`), and for `recorded` / `duplicate` seq, answered_at, active
--   (text), decision, late, day; for `invalid` drafts.
-- `now` is when the expert acted; a lease the expiry pass ended before then is answered late.
local k = keyring()
local req = cjson.decode(ARGV[1])
local token, expert, now, effect = req.token, req.expert, req.now, req.effect
local counted = effect == 'answered' or effect == 'none_acceptable'
-- Items may be asked again (overlap max above min): each keeps its own target of judgments.
local dynamic = req.judging ~= nil and req.judging.most > req.overlap

local function reply(result) return cjson.encode(result) end

-- The first outcome, as stored: seq|answered_at|active|decision[|late].
local function first_outcome(stored)
  local f = {}
  for part in string.gmatch(stored, '[^|]+') do f[#f + 1] = part end
  return {status = 'duplicate', seq = tonumber(f[1]), answered_at = tonumber(f[2]),
          active = f[3], decision = f[4], late = f[5] == 'late'}
end

-- Take a free slot of the item back for a lease that had ended; false when none is free. An
-- adjudication takes its item back from the adjudicators' queue, if nobody else took it.
local function retake(lease)
  local item = lease.item
  if lease.adjudicate then return redis.call('ZREM', k.adjq, item) == 1 end
  local target = dynamic and target_of(k, item, req.overlap) or req.overlap
  local taken = tonumber(redis.call('HGET', k.taken, item) or '0')
  if not slot_free(taken, target) then return false end
  if not slot_free(redis.call('HINCRBY', k.taken, item, 1), target) then
    redis.call('ZREM', k.open, item)
    redis.call('ZREM', k.esc, item)
  end
  return true
end

-- The event as written: the service's part, and the lease's.
local function answered_event(lease, late, active, delivered, opened)
  local event, payload = req.event, req.event.payload
  event.payload = nil
  event.item = lease.item
  payload.gold = lease.gold
  if lease.qualification then payload.qualification = true end
  if late then payload.late = true end
  local timing = '"timing":{"active_seconds":' .. active .. ',"answered_at":' .. json_ms(now)
    .. ',"assigned_at":' .. json_ms(lease.assigned_at) .. ',"delivered_at":' .. json_ms(delivered)
    .. ',"opened_at":' .. json_ms(opened) .. '}'
  return json_with(event, '"payload":' .. json_with(payload, '"order":'
    .. json_indices(lease.order) .. ',' .. timing))
end

-- The item's votes so far, kept as "seq:vote," per item: the seqs of the answers and the votes.
local function votes_of(item)
  local seqs, votes = {}, {}
  for seq, vote in string.gmatch(redis.call('HGET', k.votes, item) or '', '(%d+):([^,]*),') do
    seqs[#seqs + 1] = tonumber(seq)
    votes[#votes + 1] = vote
  end
  return seqs, votes
end

-- A vote in the file's terms: a draft label as shown becomes the draft's index in the file.
local function file_vote(lease, j)
  if j.shown and j.vote ~= 'tie' then return tostring(lease.order[string.byte(j.vote) - 64]) end
  return j.vote
end

-- Why the votes did not settle the item, in words, with the tally by vote.
local function disagreement(votes, j)
  local by_vote = {}
  for _, vote in ipairs(votes) do by_vote[vote] = (by_vote[vote] or 0) + 1 end
  if j.rated then
    local low, high = math.huge, -math.huge
    for _, vote in ipairs(votes) do low = math.min(low, tonumber(vote)); high = math.max(high, tonumber(vote)) end
    return by_vote, 'the scores spread ' .. (high - low) .. ', more than ' .. j.max_spread
  end
  local top = 0
  for _, n in pairs(by_vote) do top = math.max(top, n) end
  return by_vote, 'the majority holds ' .. top .. ' of ' .. #votes .. ', under a share of ' .. j.share
end

-- A system event about an item's judgments, with the answers it rests on.
local function judgment_event(item, type_, seqs, votes, j, extra)
  local by_vote, why = disagreement(votes, j)
  append_event(k.seq, k.log, json_with({actor = 'system', at = req.event.at,
    campaign = req.event.campaign, item = item, type = type_},
    '"payload":' .. json_with({answers = seqs, votes = by_vote, why = why}, extra)))
end

-- After a counted answer that fills the item's judgments: if they do not settle it, ask one
-- more expert (up to the most), else hand it to an adjudicator when the campaign says so.
-- Returns whether the item is done.
local function judge(lease, seq)
  local j = req.judging
  local item = lease.item
  local vote = (j and j.vote) and file_vote(lease, j) or ''  -- every answer, for adjudicators
  redis.call('HSET', k.votes, item, (redis.call('HGET', k.votes, item) or '') .. seq .. ':'
    .. vote .. ',')
  local target = dynamic and target_of(k, item, req.overlap) or req.overlap
  if redis.call('HINCRBY', k.done, item, 1) ~= target then return false end
  if not (j and j.vote and (target < j.most or j.adjudicate)) then return true end
  local seqs, votes = votes_of(item)
  if settles(votes, j.share_ppm, j.max_spread, j.rated) then return true end
  if target < j.most then
    redis.call('HSET', k.target, item, target + 1)
    redis.call('HSET', k.escalated, item, now)
    redis.call('ZADD', k.esc, now, item)
    judgment_event(item, 'escalated', seqs, votes, j, '"target":' .. (target + 1))
    return false
  end
  if j.adjudicate then
    redis.call('ZADD', k.adjq, now, item)
    redis.call('HINCRBY', k.counts, 'awaiting_adjudication', 1)
    judgment_event(item, 'adjudication_needed', seqs, votes, j, '"target":' .. target)
  end
  return true
end

-- Counts, the item's progress and the campaign's task-time estimate.
local function tally(lease, late, active, seq)
  if lease.qualification then  -- a qualification answer: paid for its time, not work done
    redis.call('HINCRBY', k.counts, 'qualification_answers', 1)
    return
  end
  if lease.adjudicate then  -- the final call; a skip or flag leaves it for another adjudicator
    redis.call('SREM', k.adjudicating, lease.item)
    if effect == 'adjudicated' then
      redis.call('HINCRBY', k.counts, 'awaiting_adjudication', -1)
    else
      redis.call('ZADD', k.adjq, now, lease.item)
    end
    redis.call('HINCRBY', k.counts, effect, 1)
    return
  end
  if not counted then
    if not lease.gold and not late and not lease.adjudicate then reopen(k, lease.item, lease.item_seq) end
    redis.call('HINCRBY', k.counts, effect, 1)
    return
  end
  local answers = redis.call('HINCRBY', k.counts, 'answers', 1)
  if effect == 'none_acceptable' then redis.call('HINCRBY', k.counts, 'none_acceptable', 1) end
  if not lease.gold and judge(lease, seq) then redis.call('HINCRBY', k.counts, 'done', 1) end
  redis.call('LPUSH', k.durations, active)
  redis.call('LTRIM', k.durations, 0, 199)
  if refreshes_estimate(answers) then
    redis.call('HSET', k.counts, 'estimate_s', median(redis.call('LRANGE', k.durations, 0, -1)),
               'estimate_n', answers)
  end
end

local lease, state, first, delivered, opened = stored_lease(k, token)
if not lease then return reply({status = 'gone'}) end
if lease.expert ~= expert then return reply({status = 'gone'}) end  -- not theirs: say nothing
local late = state == 'expired' and lease.expires_at > now
if state ~= 'live' and not late then
  if first then return reply(first_outcome(first)) end
  return reply({status = state})
end
if redis.call('HGET', k.meta, 'state') == 'closed' then return reply({status = 'closed'}) end
-- A final call needs its reason; so may an answer on an item asked again. An adjudicator's
-- answer is written as the `adjudicated` event.
local needs_reason = lease.adjudicate or (req.reason_if_escalated and lease.escalated)
if counted and needs_reason and not req.event.payload.rationale then
  return reply({status = 'reason_needed'})
end
if lease.adjudicate and counted then
  effect = 'adjudicated'
  req.event.type = 'adjudicated'
end
if req.expect_drafts > 0 and req.expect_drafts ~= #lease.order then
  return reply({status = 'invalid', drafts = #lease.order})
end
if late then
  -- Acted before the deadline, handled after the expiry pass gave the slot back (a backlog):
  -- honoured while the item still has a free slot. A skip or flag needs none: it is back already.
  if (counted or lease.adjudicate) and not lease.gold and not retake(lease) then
    return reply({status = 'taken'})
  end
  redis.call('HINCRBY', k.counts, 'expired', -1)
elseif lease.expires_at <= now then
  expire_lease(k, token, req.event.at, req.event.campaign)
  return reply({status = 'expired'})
end

local started = req.opened_at or opened
local active = active_seconds(now, started_at(started, delivered, lease.assigned_at),
                              req.time_limit_s)
local seq = append_event(k.seq, k.log, answered_event(lease, late, active, delivered, started))
fold_lease(k, token, lease, {state = effect, seq = seq, at = now, active = active,
                             decision = req.decision, late = late, delivered = delivered,
                             opened = opened})
redis.call('ZREM', k.expiry, token)
if redis.call('HGET', k.active, expert) == token then redis.call('HDEL', k.active, expert) end
tally(lease, late, active, seq)
-- A finished item's archived body goes: the archive holds it (trim_archived.lua kept it in play).
if not lease.qualification and redis.call('HEXISTS', k.archived_items, lease.item_seq) == 1
    and not in_play(k, lease.item) then
  redis.call('HDEL', k.archived_items, lease.item_seq)
end
return reply({status = 'recorded', seq = seq, answered_at = now, active = active,
              decision = req.decision, day = lease.day, late = late})
