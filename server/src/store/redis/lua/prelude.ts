/**
 * Lua shared by the ledger's scripts, put in front of each. It mirrors the pure policy of
 * server/src/gate (quota.ts's UTC day and month, accounting.ts's charge and refund) on numbers that
 * are doubles in Lua as in JavaScript; numbers are written with `%.17g`, which reads back as the
 * same double; whole numbers (credits, calls, times in ms) take a cheaper path to the same digits.
 * The Redis time these scripts take per call caps every gate sharing the Redis, so they read each
 * hash once and write it once where they can (test/bench/redisScriptCost.ts measures them).
 * Time is Redis's `TIME`, in milliseconds. KEYS[1] is the hash tag `{prefix}`: every key name starts
 * with it (see keySpace.ts), so every script runs in one Cluster slot.
 *
 * The `#!lua` line (Redis 7) makes Redis refuse a script before it runs when memory is full, rather
 * than at its first write: a script is all or nothing only if no command in it fails midway.
 */
export const PRELUDE = String.raw`#!lua
local P = KEYS[1] .. ':'

local format = string.format
local MAX_EXACT = 9007199254740992

-- A number as a string that reads back as the same double. '%.17g' goes through glibc's slow
-- multi-precision path even for whole numbers; '%d' prints a whole number below 2^53 with the
-- same digits ('%.17g' only switches to an exponent from 1e17) at about half the cost. The last
-- one is remembered: a script writes its time several times.
local lastNumber, lastText
local function fmt(x)
  if x == lastNumber then return lastText end
  lastNumber = x
  if x % 1 == 0 and x < MAX_EXACT and x > -MAX_EXACT then lastText = format('%d', x) else lastText = format('%.17g', x) end
  return lastText
end

-- A stored number; '' and missing read as 0. '0' is common (in-flight counts, limits) and spared
-- tonumber, which parses with strtod.
local function num(v)
  if v == '0' or v == false or v == nil or v == '' then return 0 end
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
  civilMs, civilDay = ms, format('%04d-%02d-%02d', y, m, d)
  civilMonth = string.sub(civilDay, 1, 7)
  return civilDay, civilMonth
end

-- Everything an admission or a refund reads of a key, in one HMGET: its balance, what admission
-- checks beside it, and how its events are named and placed. rev is nil if there is no such key.
-- b.stored keeps the fields as read. keys.ts stores a new key's fields in this order, first.
local function loadKey(key)
  local v = redis.call('HMGET', key, 'credits', 'totalSpent', 'totalCalls', 'lastUsedAt', 'day', 'month',
    'dailyCalls', 'dailyCredits', 'monthlyCalls', 'monthlyCredits', 'inflightCredits', 'inflightCalls',
    'rev', 'spendingLimit', 'keyPrefix', 'name', 'namespace')
  return {
    credits = num(v[1]), totalSpent = num(v[2]), totalCalls = num(v[3]), lastUsedAt = v[4] or '',
    day = v[5] or '', month = v[6] or '', dailyCalls = num(v[7]), dailyCredits = num(v[8]),
    monthlyCalls = num(v[9]), monthlyCredits = num(v[10]), inflightCredits = num(v[11]), inflightCalls = num(v[12]),
    rev = v[13] or nil, spendingLimit = num(v[14]), keyPrefix = v[15] or '', name = v[16] or '', namespace = v[17] or 'default',
    stored = v,
  }
end

-- How a key's events are named and placed, for callers that need nothing else of it.
local function loadKeyNames(id)
  local v = redis.call('HMGET', P .. 'key:' .. id, 'keyPrefix', 'name', 'namespace')
  return {keyPrefix = v[1] or '', name = v[2] or '', namespace = v[3] or 'default'}
end

-- The balance as stored, as the client reads it (codec.ts BALANCE_FIELDS order): the strings read,
-- which are the numbers the script loaded ('' reads as 0 on both sides).
local function balanceReply(b)
  local v = b.stored
  return {v[1] or '', v[2] or '', v[3] or '', v[4] or '', v[5] or '', v[6] or '', v[7] or '', v[8] or '', v[9] or '', v[10] or ''}
end

-- Writes the balance in one HSET; the day, month and last use only when they changed.
local function saveBalance(key, b)
  local v = b.stored
  local args = {'credits', fmt(b.credits), 'totalSpent', fmt(b.totalSpent), 'totalCalls', fmt(b.totalCalls),
    'dailyCalls', fmt(b.dailyCalls), 'dailyCredits', fmt(b.dailyCredits), 'monthlyCalls', fmt(b.monthlyCalls),
    'monthlyCredits', fmt(b.monthlyCredits), 'inflightCredits', fmt(b.inflightCredits), 'inflightCalls', fmt(b.inflightCalls)}
  if b.lastUsedAt ~= (v[4] or '') then args[#args + 1] = 'lastUsedAt'; args[#args + 1] = b.lastUsedAt end
  if b.day ~= (v[5] or '') then args[#args + 1] = 'day'; args[#args + 1] = b.day end
  if b.month ~= (v[6] or '') then args[#args + 1] = 'month'; args[#args + 1] = b.month end
  redis.call('HSET', key, unpack(args))
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
  b.lastUsedAt = fmt(now)
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
  if credits ~= 0 then redis.call('HINCRBYFLOAT', totals, 'totalCredits', fmt(credits)) end
  if spent ~= 0 then redis.call('HINCRBYFLOAT', totals, 'totalSpent', fmt(spent)) end
  if calls ~= 0 then redis.call('HINCRBYFLOAT', totals, 'totalCalls', fmt(calls)) end
end

-- What a balance counts in its namespace's totals: taken before a change, for addBalanceTotals.
local function totalsOf(b)
  return b.credits, b.totalSpent, b.totalCalls
end

-- A balance change's effect on its namespace's totals, from totalsOf(b) before it. One HMGET and one
-- HSET cost Redis less than three HINCRBYFLOATs (each parses and prints long doubles and is
-- propagated as an HSET anyway); the sums are Lua doubles, exact for whole numbers below 2^53.
local function addBalanceTotals(b, credits, spent, calls)
  local totals = P .. 'totals:' .. b.namespace
  local v = redis.call('HMGET', totals, 'totalCredits', 'totalSpent', 'totalCalls')
  local args = {}
  local function add(i, field, delta)
    if delta ~= 0 then
      args[#args + 1] = field
      args[#args + 1] = fmt(num(v[i]) + delta)
    end
  end
  add(1, 'totalCredits', b.credits - credits)
  add(2, 'totalSpent', b.totalSpent - spent)
  add(3, 'totalCalls', b.totalCalls - calls)
  if #args > 0 then redis.call('HSET', totals, unpack(args)) end
end

local function bumpTool(row, calls, credits, denied)
  local stats = P .. 'tools'
  if calls ~= 0 then redis.call('HINCRBY', stats, 'calls:' .. row, calls) end
  if credits ~= 0 then redis.call('HINCRBYFLOAT', stats, 'credits:' .. row, fmt(credits)) end
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
  local atText = fmt(at)
  if last[2] == false or tonumber(last[2]) ~= minute then
    local minuteText = fmt(minute)
    redis.call('ZADD', P .. 'evmin', minuteText, id)
    redis.call('HSET', clockKey, 'at', atText, 'minute', minuteText)
  elseif at ~= lastAt then
    redis.call('HSET', clockKey, 'at', atText)
  end
  if reason then
    redis.call('XADD', P .. 'usage', format('%d-0', id), 'at', atText, 'keyId', keyId, 'keyPrefix', keyPrefix, 'keyName', keyName,
      'namespace', namespace, 'tool', tool, 'credits', fmt(credits), 'status', status, 'reason', reason)
  else
    redis.call('XADD', P .. 'usage', format('%d-0', id), 'at', atText, 'keyId', keyId, 'keyPrefix', keyPrefix, 'keyName', keyName,
      'namespace', namespace, 'tool', tool, 'credits', fmt(credits), 'status', status)
  end
  return id
end

-- An event of the key with this id, named and placed as k (from loadKey or loadKeyNames) says.
local function addKeyEvent(now, id, k, tool, credits, status, reason)
  return addEvent(now, id, k.keyPrefix, k.name, k.namespace, tool, credits, status, reason)
end
`;
