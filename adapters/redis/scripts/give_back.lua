-- End a live lease its channel could not show (the platform refused the card): the slot goes
-- back to the pool at once, like an expired lease, with the caller's event (`undeliverable`).
-- The state `undeliverable` means no tap can come late on it: it was never shown.
-- A lease answered, expired or given back already is left alone (returns 0).
-- ARGV: token, event body
local k = keyring()
if not end_lease(k, ARGV[1], 'undeliverable') then return 0 end
append_event(k.seq, k.log, ARGV[2])
return 1
