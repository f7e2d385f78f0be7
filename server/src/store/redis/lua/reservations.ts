/**
 * Lua for ending a reservation's charges, shared by settle.ts and lease.ts (prepended after the
 * prelude). A reservation HASH holds key, inst, at, n, open (charges not settled yet) and per
 * charge i: c<i> credits, t<i> tool, w<i> tool stats row, s<i> 'k' (kept) or 'r' (refunded), and
 * once kept e<i>, the id of its `charged` event.
 * Once no charge is open it leaves its instance's set and expires after a while, so that settling
 * it again stays a no-op for as long as anyone may retry.
 */
export const RESERVATIONS = String.raw`
-- How long a settled reservation (or a cancelled id) is remembered: longer than any retry.
local SETTLED_TTL_MS = 86400000

local function closeCharge(resKey, r, i)
  local open = redis.call('HINCRBY', resKey, 'open', -1)
  if open <= 0 then
    redis.call('SREM', P .. 'inst:' .. r.inst, r.id)
    redis.call('PEXPIRE', resKey, SETTLED_TTL_MS)
  end
end

local function loadReservation(id)
  local resKey = P .. 'res:' .. id
  local v = redis.call('HMGET', resKey, 'key', 'inst', 'at')
  if not v[1] then return nil, resKey end
  return {id = id, key = v[1], inst = v[2], at = tonumber(v[3])}, resKey
end

-- Gives charge i back (c holds its c, t, w and s fields): credits, totals and quota use (of the day
-- and month it was made in), with an event of this status. A charge still in flight also leaves the
-- in-flight counts; a kept one leaves its tool's stats.
local function giveBack(r, resKey, i, c, status, reason, now)
  local credits = num(c[1])
  local key = P .. 'key:' .. r.key
  local b = loadBalance(key)
  local before = copyBalance(b)
  applyRefund(b, credits, 1, r.at, now)
  if c[4] == 'k' then
    bumpTool(c[3], -1, -credits, 0)
  else
    b.inflightCredits = b.inflightCredits - credits
    b.inflightCalls = b.inflightCalls - 1
  end
  saveBalance(key, b)
  addBalanceTotals(redis.call('HGET', key, 'namespace') or 'default', before, b)
  addKeyEvent(now, r.key, c[2], 0, status, reason)
  redis.call('HSET', resKey, 's' .. i, 'r')
  if c[4] ~= 'k' then closeCharge(resKey, r, i) end
  return 'refunded'
end

-- Refunds charge i if it is still open; a settled charge stays as it is ('kept' is final).
local function refundCharge(r, resKey, i, status, reason, now)
  local c = redis.call('HMGET', resKey, 'c' .. i, 't' .. i, 'w' .. i, 's' .. i)
  if c[4] == 'r' then return 'refunded' end
  if c[4] == 'k' then return 'kept' end
  return giveBack(r, resKey, i, c, status, reason, now)
end

-- Keeps charge i if it is still open, and remembers its charged event's id as e<i>.
local function keepCharge(r, resKey, i, now)
  local c = redis.call('HMGET', resKey, 'c' .. i, 't' .. i, 'w' .. i, 's' .. i)
  if c[4] == 'k' then return 'kept' end
  if c[4] == 'r' then return 'refunded' end
  local credits = num(c[1])
  local key = P .. 'key:' .. r.key
  redis.call('HINCRBYFLOAT', key, 'inflightCredits', fmt(-credits))
  redis.call('HINCRBYFLOAT', key, 'inflightCalls', -1)
  bumpTool(c[3], 1, credits, 0)
  local eventId = addKeyEvent(now, r.key, c[2], credits, 'charged', nil)
  redis.call('HSET', resKey, 's' .. i, 'k', 'e' .. i, eventId)
  closeCharge(resKey, r, i)
  return 'kept'
end
`;
