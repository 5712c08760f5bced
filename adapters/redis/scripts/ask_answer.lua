-- Record one expert's answer to an ask, and decide the ask when its quorum is met: the token
-- must be this expert's; a repeat is a replay of the first answer; a pending ask records it
-- (and may decide), a withdrawn one records it "after withdrawal"; any other takes nothing.
-- ARGV[1]: JSON {token, expert, now, at_iso, decision (JSON text), key, status, rejects,
-- needed, comment, body, late_body}
local k = keyring()
local req = cjson.decode(ARGV[1])
local id, owner = token_owner(k, req.token)
if not id or owner ~= req.expert then return cjson.encode({status = 'gone'}) end
local a = ask_keys(k, id)
local first = redis.call('HGET', a.answers, owner)
if first then
  local was = cjson.decode(first)
  return cjson.encode({status = 'duplicate', ask = id, seq = was.seq, at = was.at,
                       after_withdrawal = was.after_withdrawal})
end
local status = redis.call('HGET', a.ask, 'status')
if status ~= 'pending' and status ~= 'withdrawn' then
  local by = redis.call('HGET', a.ask, 'by')
  if not by or by == '' then status = 'expired' end  -- a timeout's rejection: nobody decided
  return cjson.encode({status = status, ask = id})
end
local late = status == 'withdrawn'
local seq = ask_event(k, a, late and req.late_body or req.body)
redis.call('HSET', a.answers, owner, json_with(
  {expert = owner, at = req.now, seq = seq, after_withdrawal = late, key = req.key,
   status = req.status, comment = req.comment}, '"decision":' .. req.decision))
redis.call('ZREM', k['x:' .. owner], req.token)
local marks = redis.call('HMGET', k.marks, 'opened:' .. req.token, 'delivered:' .. req.token,
                         'offered:' .. req.token)
local started = tonumber(marks[1] or marks[2] or marks[3])

-- Quorum (reference: core/service/ask_quorum.py `decide`): one rejection rejects at once;
-- else, once `needed` experts answered, the same answers decide and differing ones disagree.
local function decide()
  local answers = {}
  if req.rejects then
    answers = {{expert = owner, seq = seq, key = req.key}}
  else
    local raw = redis.call('HVALS', a.answers)
    if #raw < req.needed then return nil end
    for i, text in ipairs(raw) do answers[i] = cjson.decode(text) end
    table.sort(answers, function(x, y) return x.seq < y.seq end)
  end
  local verdict, by, seqs, comment = req.status, {}, {}, nil
  for i, answer in ipairs(answers) do
    by[i], seqs[i] = answer.expert, answer.seq
    if answer.key ~= req.key then verdict = 'disagreed' end
    if not comment and answer.comment ~= '' then comment = answer.comment end
  end
  if req.rejects then comment = req.comment end
  local payload = {status = verdict, by = by, answers = seqs, comment = comment}
  local decision = verdict ~= 'disagreed' and req.decision or nil
  redis.call('HSET', a.ask, 'status', verdict, 'decided_at', req.now, 'by', cjson.encode(by),
             'decision', decision or '', 'comment', comment or '')
  local extra = '"payload":' .. (decision and json_with(payload, '"decision":' .. decision)
                                 or cjson.encode(payload))
  ask_event(k, a, json_with({actor = 'system', at = req.at_iso, campaign = 'asks', item = id,
                             type = 'ask_decided'}, extra))
  finish(k, id, a, 'decided')
  return verdict
end

local decided = nil
if not late then decided = decide() end
return cjson.encode({status = 'recorded', ask = id, seq = seq, at = req.now,
                     after_withdrawal = late, decided = decided, started = started})
