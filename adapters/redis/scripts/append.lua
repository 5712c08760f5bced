-- Append one event to the campaign log. ARGV: body
local k = keyring()
return append_event(k.seq, k.log, ARGV[1])
