-- Shared by every script (prepended by the loader). Redis 6.2 has no function libraries.

-- Append one event body to the campaign log; its stream id `0-<seq>` is its place in the chain.
local function append_event(seq_key, log_key, body)
  local seq = redis.call('INCR', seq_key)
  redis.call('XADD', log_key, '0-' .. seq, 'e', body)
  return seq
end

-- Give a slot back: the item is offered again, at its original place in the queue.
local function reopen(taken_key, open_key, item, item_seq)
  local left = redis.call('HINCRBY', taken_key, item, -1)
  if left < 0 then redis.call('HSET', taken_key, item, 0) end
  redis.call('ZADD', open_key, item_seq, item)
end

-- End a live lease whose time ran out, with its own event; returns true when it did.
local function expire_lease(k, token, at_iso, campaign)
  if redis.call('HGET', k.state, token) ~= 'live' then
    redis.call('ZREM', k.expiry, token)
    return false
  end
  local lease = cjson.decode(redis.call('HGET', k.leases, token))
  redis.call('HSET', k.state, token, 'expired')
  redis.call('ZREM', k.expiry, token)
  if redis.call('HGET', k.active, lease.expert) == token then
    redis.call('HDEL', k.active, lease.expert)
  end
  if not lease.gold then reopen(k.taken, k.open, lease.item, lease.item_seq) end
  redis.call('HINCRBY', k.counts, 'expired', 1)
  local body = '{"actor":"system","at":' .. cjson.encode(at_iso)
    .. ',"campaign":' .. cjson.encode(campaign)
    .. ',"expert":' .. cjson.encode(lease.expert)
    .. ',"item":' .. cjson.encode(lease.item)
    .. ',"lease":' .. cjson.encode(token)
    .. ',"payload":{"expires_at":' .. string.format('%d', lease.expires_at) .. '}'
    .. ',"type":"lease_expired"}'
  append_event(k.seq, k.log, body)
  return true
end

-- Every key of a campaign shares its hash tag, so a script is handed one key (KEYS[1], the
-- campaign's `meta`) and names the rest from its prefix: fewer arguments to send, one slot.
local function keyring()
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - 4)
  return setmetatable({}, {__index = function(ring, name)
    local key = prefix .. name
    rawset(ring, name, key)
    return key
  end})
end
