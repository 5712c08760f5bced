-- Lease an expert the next qualification item they have not answered, atomically. Every expert
-- answers every qualification item once; no slots are counted, and the lease is a gold one, so
-- ending it (expiry, give back) puts nothing in the campaign's queues.
-- ARGV[1]: the request, as claim.lua's (expert, token, now, expires_at, day, shuffle, event).
-- Returns {reply} or {reply, item body}: status `lease` (with the lease, estimate_s, estimate_n,
--   position, total), `passed` / `failed` (decided already), `complete` (answers: item, item
--   seq and answer seq, tab-separated, a line per item, to grade: ids hold no tab or newline), or `inactive` with state.
local k = keyring()
local req = cjson.decode(ARGV[1])
local expert, token, now = req.expert, req.token, req.now
local mine = k['qual:' .. expert]  -- qualification item -> the expert's latest lease of it

local state = redis.call('HGET', k.meta, 'state')
if state ~= 'active' then return {cjson.encode({status = 'inactive', state = state or 'missing'})} end
local result = redis.call('HGET', k.qualified, expert)
if result then
  local decided = cjson.decode(result).state
  if decided ~= 'in_progress' then return {cjson.encode({status = decided})} end
end

local function leased(lease_json, extra)
  local lease = cjson.decode(lease_json)
  local estimate = redis.call('HMGET', k.counts, 'estimate_s', 'estimate_n')
  extra.status = 'lease'
  extra.estimate_s = tonumber(estimate[1])
  extra.estimate_n = tonumber(estimate[2])
  local entry = redis.call('XRANGE', k.log, '0-' .. lease.item_seq, '0-' .. lease.item_seq)
  local body = entry[1] and entry[1][2][2] or redis.call('HGET', k.archived_items, lease.item_seq)
  return {json_with(extra, '"lease":' .. lease_json), body}
end

local items = redis.call('ZRANGE', k.qual, 0, -1)
local function position_of(item)
  for i, id in ipairs(items) do if id == item then return i end end
  return 0
end

-- One live task per expert and campaign, qualification or not: asking again returns it.
local held = redis.call('HGET', k.active, expert)
if held then
  local ends = redis.call('ZSCORE', k.expiry, held)
  if ends and tonumber(ends) > now then
    local lease_json = redis.call('HGET', k.leases, held)
    local item = cjson.decode(lease_json).item
    return leased(lease_json, {position = position_of(item), total = #items})
  end
  expire_lease(k, held, req.event.at, req.event.campaign)
end

-- The first item without a finished answer: never leased, or its lease expired or given back.
local pick, position, answers = nil, 0, {}
for i, item in ipairs(items) do
  local leased_as = redis.call('HGET', mine, item)
  local outcome = nil
  if leased_as then outcome = select(3, stored_lease(k, leased_as)) end
  if outcome then
    local seq = string.match(outcome, '^(%d+)|')
    answers[#answers + 1] = item .. '\t' .. string.match(redis.call('HGET', k.qitems, item), '^(%d+),')
      .. '\t' .. seq .. '\n'
  elseif not pick then
    pick, position = item, i
  end
end
if not pick then return {cjson.encode({status = 'complete', answers = table.concat(answers)})} end
if not result then
  redis.call('HSET', k.qualified, expert, cjson.encode({expert = expert, state = 'in_progress'}))
end

local info = redis.call('HGET', k.qitems, pick)
local comma = string.find(info, ',', 1, true)
local item_seq = tonumber(string.sub(info, 1, comma - 1))
local n_drafts = tonumber(string.sub(info, comma + 1))
local order_json = '"order":' .. json_indices(shown_order(req.shuffle, n_drafts))
local lease = json_with({token = token, campaign = req.event.campaign, expert = expert,
                         day = req.day, assigned_at = now, expires_at = req.expires_at,
                         item = pick, item_seq = item_seq, gold = true, qualification = true,
                         adjudicate = false, escalated = false}, order_json)
local event = req.event
event.item = pick
event.payload = nil
local body = json_with(event, '"payload":' .. json_with(
  {expires_at = req.expires_at, gold = true, item_seq = item_seq, qualification = true},
  order_json))

redis.call('HSET', mine, pick, token)
redis.call('HSET', k.leases, token, lease)
redis.call('HSET', k.state, token, 'live')
redis.call('ZADD', k.expiry, req.expires_at, token)
redis.call('HSET', k.active, expert, token)
append_event(k.seq, k.log, body)
return leased(lease, {position = position, total = #items})
