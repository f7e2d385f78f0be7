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

-- Reservation id's charge i in one HMGET of what a keep needs: the reservation r (nil if it is not
-- stored) and the charge c = {credits, tool, stats row, state ('k', 'r' or false while open)}.
local function loadCharge(id, i)
  local resKey = P .. 'res:' .. id
  local v = redis.call('HMGET', resKey, 'key', 'inst', 'open', 'c' .. i, 't' .. i, 'w' .. i, 's' .. i)
  if not v[1] then return nil, nil, resKey end
  return {id = id, key = v[1], inst = v[2], open = num(v[3])}, {v[4], v[5], v[6], v[7]}, resKey
end

-- Writes charge i's settlement (field, value pairs) into its reservation; an open charge is closed
-- in the same HSET, and once none is open the reservation leaves its instance's set and expires.
local function settleCharge(resKey, r, c, ...)
  if c[4] then
    redis.call('HSET', resKey, ...)
    return
  end
  local open = r.open - 1
  redis.call('HSET', resKey, 'open', fmt(open), ...)
  if open <= 0 then
    redis.call('SREM', P .. 'inst:' .. r.inst, r.id)
    redis.call('PEXPIRE', resKey, SETTLED_TTL_MS)
  end
end

-- Gives charge i back: credits, totals and quota use (of the day and month it was made in), with an
-- event of this status. A charge still in flight also leaves the in-flight counts; a kept one leaves
-- its tool's stats.
local function giveBack(r, resKey, i, c, status, reason, now)
  local credits = num(c[1])
  local key = P .. 'key:' .. r.key
  local b = loadKey(key)
  local creditsBefore, spentBefore, callsBefore = totalsOf(b)
  applyRefund(b, credits, 1, tonumber(redis.call('HGET', resKey, 'at')), now)
  if c[4] == 'k' then
    bumpTool(c[3], -1, -credits, 0)
  else
    b.inflightCredits = b.inflightCredits - credits
    b.inflightCalls = b.inflightCalls - 1
  end
  saveBalance(key, b)
  addBalanceTotals(b, creditsBefore, spentBefore, callsBefore)
  addKeyEvent(now, r.key, b, c[2], 0, status, reason)
  settleCharge(resKey, r, c, 's' .. i, 'r')
  return 'refunded'
end

-- Refunds charge i if it is still open; a settled charge stays as it is ('kept' is final).
local function refundCharge(r, resKey, i, c, status, reason, now)
  if c[4] == 'r' then return 'refunded' end
  if c[4] == 'k' then return 'kept' end
  return giveBack(r, resKey, i, c, status, reason, now)
end

-- Keeps charge i if it is still open, and remembers its charged event's id as e<i>. The in-flight
-- counts are read with the key's names and written back in one HSET (Lua doubles, as admit writes them).
local function keepCharge(r, resKey, i, c, now)
  if c[4] == 'k' then return 'kept' end
  if c[4] == 'r' then return 'refunded' end
  local credits = num(c[1])
  local key = P .. 'key:' .. r.key
  local v = redis.call('HMGET', key, 'keyPrefix', 'name', 'namespace', 'inflightCredits', 'inflightCalls')
  redis.call('HSET', key, 'inflightCredits', fmt(num(v[4]) - credits), 'inflightCalls', fmt(num(v[5]) - 1))
  bumpTool(c[3], 1, credits, 0)
  local names = {keyPrefix = v[1] or '', name = v[2] or '', namespace = v[3] or 'default'}
  local eventId = addKeyEvent(now, r.key, names, c[2], credits, 'charged', nil)
  settleCharge(resKey, r, c, 's' .. i, 'k', 'e' .. i, eventId)
  return 'kept'
end
`;
