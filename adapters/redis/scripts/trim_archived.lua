-- Move one sealed segment out of Redis, once its file was written and read back: list it in the
-- manifest, keep the item bodies that claims still read, trim the stream and drop the seals.
-- ARGV: the segment's meta (JSON), first_seq, last_seq, prev, last_hash, then seq, item pairs:
--   the segment's events that hold an item (claim.lua, claim_qualification.lua and view.lua
--   read an item's body by the seq its lease names; a body is kept only while `items` or
--   `qitems` still points at that seq, and an item of `items` only while it is in play).
-- Returns 1, or 0 with nothing changed: the segment must follow the last archived one (or start
-- the log), chain from its last hash, and be sealed, its last seal the one the file holds.
local k = keyring()
local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
local prev, last_hash = ARGV[4], ARGV[5]
if last < first then return 0 end
local newest = redis.call('ZRANGE', k.segments, -1, -1)
if newest[1] then
  local before = cjson.decode(newest[1])
  if first ~= before.last_seq + 1 or prev ~= before.last_hash then return 0 end
elseif first ~= 1 or prev ~= string.rep('0', 64) then
  return 0
end
local head = redis.call('GET', k.head)
if not head or tonumber(string.match(head, '^%d+')) < last then return 0 end
if redis.call('HGET', k.hashes, last) ~= last_hash then return 0 end

for i = 6, #ARGV, 2 do
  local seq, item = ARGV[i], ARGV[i + 1]
  local ref = redis.call('HGET', k.qitems, item)  -- qualification items: kept, few
  if not ref then
    ref = redis.call('HGET', k.items, item)
    if ref and not in_play(k, item) then ref = nil end  -- finished: the archive holds it
  end
  if ref and string.match(ref, '^(%d+),') == seq then
    local entry = redis.call('XRANGE', k.log, '0-' .. seq, '0-' .. seq)
    if entry[1] then redis.call('HSET', k.archived_items, seq, entry[1][2][2]) end
  end
end
redis.call('ZADD', k.segments, last, ARGV[1])
redis.call('XTRIM', k.log, 'MINID', '0-' .. string.format('%d', last + 1))
local fields = {}
for seq = first, last do
  fields[#fields + 1] = seq
  if #fields == 1000 or seq == last then
    redis.call('HDEL', k.hashes, unpack(fields))
    fields = {}
  end
end
return 1
