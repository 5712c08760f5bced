-- A line of why added after an answer was recorded, with its `rationale_added` event: once per
-- answer (a resent reply records nothing twice). Kept by the answer's seq too, so a report
-- reading the log in order finds it at the answer without reading ahead.
-- ARGV: the answer's seq, the rationale, the event body. Returns 1 when kept, 0 when it had one.
local k = keyring()
if redis.call('HSETNX', k.rationales, ARGV[1], ARGV[2]) == 0 then return 0 end
append_event(k.seq, k.log, ARGV[3])
return 1
