"""The Redis side of the resume store: key prefixes and the Lua scripts (server/stores/redis.py
describes the layout). Each script reads Redis's own clock, so instances need no synced clocks."""

STREAM = "tw:s:"
META = "tw:m:"
HEARTBEAT = "tw:i:"
LEASES = "tw:leases"
READERS = "tw:r:"
CANCEL = "tw:cancel:"
CHAT = "tw:chat:"

# KEYS: leases, the stream's meta. ARGV: max streams, stream key, lease ttl ms, instance, meta
# ttl ms. 1: admitted (and the meta names its owner at once, so a cancel from another instance
# finds it even before the first mirror flush).
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[2], 'owner', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""

# KEYS: heartbeat, leases, reader sets... ARGV: instance, heartbeat ttl ms, lease ttl ms,
# reader ttl ms, the leased stream keys... Returns 0 when the heartbeat was gone: Redis lost our
# keys (restarted empty, flushed) or we were away longer than its ttl.
BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local had = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
local lease = now + tonumber(ARGV[3])
for i = 5, #ARGV do
  redis.call('ZADD', KEYS[2], lease, ARGV[i])
end
local reader = now + tonumber(ARGV[4])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], reader, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
return had
"""

# KEYS[1] a reader set. ARGV: instance, reader ttl ms.
READING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] a reader set. ARGV: instance. 1: another instance has a reader now.
ELSEWHERE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if member ~= ARGV[1] then
    return 1
  end
end
return 0
"""

# KEYS: streams. ARGV[1]: MAXLEN; then per stream: its count of events n, "1" when they start
# from the ack (they replace what Redis has of the stream: a mirror sent again from its start
# after Redis lost it may find later entries there), then n triples (entry ID, field, value). An
# ID already there (sent before by a flush that failed after reaching Redis) is skipped. Returns
# {other failures, the last of their messages}.
MIRROR = """
local maxlen = ARGV[1]
local a = 2
local failed, last = 0, ''
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  if ARGV[a + 1] == '1' then
    redis.call('DEL', KEYS[k])
  end
  a = a + 2
  for _ = 1, n do
    local r = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, ARGV[a], ARGV[a + 1], ARGV[a + 2])
    if type(r) == 'table' and r.err and not string.find(r.err, 'equal or smaller', 1, true) then
      failed = failed + 1
      last = r.err
    end
    a = a + 3
  end
end
return {failed, last}
"""
