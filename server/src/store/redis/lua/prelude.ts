/**
 * Lua shared by the ledger's scripts, put in front of each. It mirrors the pure policy of
 * server/src/gate (quota.ts's UTC day and month, accounting.ts's charge and refund) on numbers that
 * are doubles in Lua as in JavaScript; numbers are written with `%.17g`, which reads back as the
 * same double. Numbers passed to `redis.call` are left as Lua numbers: Redis 7 turns them into
 * strings with `%.17g` itself, which costs less Redis time than `string.format` in Lua (the ledger's
 * Redis time per call is what caps every gate sharing it; see test/bench/redisScriptCost.ts). Time is Redis's `TIME`, in milliseconds. KEYS[1] is the hash tag `{prefix}`: every
 * key name starts with it (see keySpace.ts), so every script runs in one Cluster slot.
 *
 * The `#!lua` line (Redis 7) makes Redis refuse a script before it runs when memory is full, rather
 * than at its first write: a script is all or nothing only if no command in it fails midway.
 */
export const PRELUDE = String.raw`#!lua
local P = KEYS[1] .. ':'

local function fmt(x)
  return string.format('%.17g', x)
end

local function num(v)
  if v == false or v == nil or v == '' then return 0 end
  return tonumber(v)
end

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The UTC day (YYYY-MM-DD) and month (YYYY-MM) of a time in ms: days since the epoch to a civil date.
local civilMs, civilDay, civilMonth
local function civil(ms)
  if ms == civilMs then return civilDay, civilMonth end
  local z = math.floor(ms / 86400000) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  civilMs, civilDay, civilMonth = ms, string.format('%04d-%02d-%02d', y, m, d), string.format('%04d-%02d', y, m)
  return civilDay, civilMonth
end

-- Everything an admission or a refund reads of a key, in one HMGET: its balance, what admission
-- checks beside it, and how its events are named and placed. rev is nil if there is no such key.
local KEY_FIELDS = {'credits', 'totalSpent', 'totalCalls', 'lastUsedAt', 'day', 'month',
  'dailyCalls', 'dailyCredits', 'monthlyCalls', 'monthlyCredits', 'inflightCredits', 'inflightCalls',
  'rev', 'spendingLimit', 'keyPrefix', 'name', 'namespace'}

local function loadKey(key)
  local v = redis.call('HMGET', key, unpack(KEY_FIELDS))
  return {
    credits = num(v[1]), totalSpent = num(v[2]), totalCalls = num(v[3]), lastUsedAt = v[4] or '',
    day = v[5] or '', month = v[6] or '', dailyCalls = num(v[7]), dailyCredits = num(v[8]),
    monthlyCalls = num(v[9]), monthlyCredits = num(v[10]), inflightCredits = num(v[11]), inflightCalls = num(v[12]),
    rev = v[13] or nil, spendingLimit = num(v[14]), keyPrefix = v[15] or '', name = v[16] or '', namespace = v[17] or 'default',
  }
end

-- How a key's events are named and placed, for callers that need nothing else of it.
local function loadKeyNames(id)
  local v = redis.call('HMGET', P .. 'key:' .. id, 'keyPrefix', 'name', 'namespace')
  return {keyPrefix = v[1] or '', name = v[2] or '', namespace = v[3] or 'default'}
end

-- The balance fields as the client reads them (codec.ts BALANCE_FIELDS order).
local function balanceReply(b)
  return {fmt(b.credits), fmt(b.totalSpent), fmt(b.totalCalls), b.lastUsedAt, b.day, b.month,
    fmt(b.dailyCalls), fmt(b.dailyCredits), fmt(b.monthlyCalls), fmt(b.monthlyCredits)}
end

local function saveBalance(key, b)
  redis.call('HSET', key, 'credits', b.credits, 'totalSpent', b.totalSpent, 'totalCalls', b.totalCalls,
    'lastUsedAt', b.lastUsedAt, 'day', b.day, 'month', b.month, 'dailyCalls', b.dailyCalls,
    'dailyCredits', b.dailyCredits, 'monthlyCalls', b.monthlyCalls, 'monthlyCredits', b.monthlyCredits,
    'inflightCredits', b.inflightCredits, 'inflightCalls', b.inflightCalls)
end

-- quota.ts currentUsage: counters of a past day or month read as zero.
local function rollOver(b, now)
  local day, month = civil(now)
  if b.day ~= day then b.dailyCalls = 0; b.dailyCredits = 0 end
  if b.month ~= month then b.monthlyCalls = 0; b.monthlyCredits = 0 end
  b.day = day
  b.month = month
end

-- accounting.ts applyCharge.
local function applyCharge(b, credits, calls, now)
  rollOver(b, now)
  b.credits = b.credits - credits
  b.totalSpent = b.totalSpent + credits
  b.totalCalls = b.totalCalls + calls
  b.lastUsedAt = now
  b.dailyCalls = b.dailyCalls + calls
  b.dailyCredits = b.dailyCredits + credits
  b.monthlyCalls = b.monthlyCalls + calls
  b.monthlyCredits = b.monthlyCredits + credits
end

-- accounting.ts applyRefund: quota use goes back only in the day and month the charge was made.
local function applyRefund(b, credits, calls, chargedAt, now)
  rollOver(b, now)
  local day, month = civil(chargedAt)
  b.credits = b.credits + credits
  b.totalSpent = math.max(0, b.totalSpent - credits)
  b.totalCalls = math.max(0, b.totalCalls - calls)
  if day == b.day then
    b.dailyCalls = math.max(0, b.dailyCalls - calls)
    b.dailyCredits = math.max(0, b.dailyCredits - credits)
  end
  if month == b.month then
    b.monthlyCalls = math.max(0, b.monthlyCalls - calls)
    b.monthlyCredits = math.max(0, b.monthlyCredits - credits)
  end
end

local function addTotals(namespace, keys, active, credits, spent, calls)
  local totals = P .. 'totals:' .. namespace
  if keys ~= 0 then redis.call('HINCRBY', totals, 'keys', keys) end
  if active ~= 0 then redis.call('HINCRBY', totals, 'activeKeys', active) end
  if credits ~= 0 then redis.call('HINCRBYFLOAT', totals, 'totalCredits', credits) end
  if spent ~= 0 then redis.call('HINCRBYFLOAT', totals, 'totalSpent', spent) end
  if calls ~= 0 then redis.call('HINCRBYFLOAT', totals, 'totalCalls', calls) end
end

-- What a balance counts in its namespace's totals: taken before a change, for addBalanceTotals.
local function totalsOf(b)
  return b.credits, b.totalSpent, b.totalCalls
end

-- A balance change's effect on its namespace's totals, from totalsOf(b) before it.
local function addBalanceTotals(b, credits, spent, calls)
  addTotals(b.namespace, 0, 0, b.credits - credits, b.totalSpent - spent, b.totalCalls - calls)
end

local function bumpTool(row, calls, credits, denied)
  local stats = P .. 'tools'
  if calls ~= 0 then redis.call('HINCRBY', stats, 'calls:' .. row, calls) end
  if credits ~= 0 then redis.call('HINCRBYFLOAT', stats, 'credits:' .. row, credits) end
  if denied ~= 0 then redis.call('HINCRBY', stats, 'denied:' .. row, denied) end
end

local function countDenial(namespace, reason)
  redis.call('HINCRBY', P .. 'deny', reason, 1)
  redis.call('HINCRBY', P .. 'deny:' .. namespace, reason, 1)
end

-- Appends a usage event with the next id; its time never goes back. Returns the id. The clock is
-- written only when it moves (several events share a millisecond under load).
local function addEvent(now, keyId, keyPrefix, keyName, namespace, tool, credits, status, reason)
  local clockKey = P .. 'evclock'
  local last = redis.call('HMGET', clockKey, 'at', 'minute')
  local lastAt = num(last[1])
  local at = math.max(now, lastAt)
  local id = redis.call('INCR', P .. 'seq:event')
  local minute = math.floor(at / 60000)
  if last[2] == false or tonumber(last[2]) ~= minute then
    redis.call('ZADD', P .. 'evmin', minute, id)
    redis.call('HSET', clockKey, 'at', at, 'minute', minute)
  elseif at ~= lastAt then
    redis.call('HSET', clockKey, 'at', at)
  end
  if reason then
    redis.call('XADD', P .. 'usage', id .. '-0', 'at', at, 'keyId', keyId, 'keyPrefix', keyPrefix, 'keyName', keyName,
      'namespace', namespace, 'tool', tool, 'credits', credits, 'status', status, 'reason', reason)
  else
    redis.call('XADD', P .. 'usage', id .. '-0', 'at', at, 'keyId', keyId, 'keyPrefix', keyPrefix, 'keyName', keyName,
      'namespace', namespace, 'tool', tool, 'credits', credits, 'status', status)
  end
  return id
end

-- An event of the key with this id, named and placed as k (from loadKey or loadKeyNames) says.
local function addKeyEvent(now, id, k, tool, credits, status, reason)
  return addEvent(now, id, k.keyPrefix, k.name, k.namespace, tool, credits, status, reason)
end
`;
