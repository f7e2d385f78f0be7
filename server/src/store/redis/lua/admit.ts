import { PRELUDE } from './prelude.ts';

/**
 * Admission: checks a key's calls and debits them in one step, so that no two instances can spend
 * the same credits or rate-limit capacity. The checks are PolicyEngine.#checkCall's, call by call
 * and in its order (ACL, decided by the client and passed in; global GCRA; per-tool GCRA; credits;
 * spending limit; quotas), with its running totals. All pass: credits, totals and quota use are
 * debited, the calls counted in flight, the TATs written and the reservation stored under its
 * instance. One fails: nothing is debited and the refusal is recorded (a `denied` event, the tool's
 * denied count, the deny reason), or in shadow mode a `shadow` event with no charge at all.
 *
 * ARGV: key id, rev the caller decided on, instance id, reservation id, shadow (1/0), global rate
 * limit per minute, daily calls, monthly calls, daily credits, monthly credits (the effective quota;
 * 0 = none), lease ms, number of calls, then per call: tool, credits, tool rate limit per minute,
 * ACL refusal reason ('' if allowed), tool stats row.
 *
 * Replies {'missing'} (no such key), {'stale'} (rev changed: the caller re-reads the key),
 * {'cancelled'} (this reservation id was cancelled before it arrived), or
 * {outcome ('ok' | 'denied' | 'shadow'), now, balance before, {bucket, stored TAT, …}, failed call (1-based), reason}
 * where a bucket is '' for the key's global bucket or the tool's name.
 */
export const ADMIT = PRELUDE + String.raw`
local id = ARGV[1]
local key = P .. 'key:' .. id
local b = loadKey(key)
if not b.rev then return {'missing'} end
if b.rev ~= ARGV[2] then return {'stale'} end
local instance, reservationId = ARGV[3], ARGV[4]
local resKey = P .. 'res:' .. reservationId
if redis.call('EXISTS', resKey) == 1 then return {'cancelled'} end

local now = clock()
local shadow = ARGV[5] == '1'
local globalLimit = num(ARGV[6])
local dailyCallLimit, monthlyCallLimit = num(ARGV[7]), num(ARGV[8])
local dailyCreditLimit, monthlyCreditLimit = num(ARGV[9]), num(ARGV[10])
local leaseMs = num(ARGV[11])
local n = num(ARGV[12])

local balanceBefore = balanceReply(b)
local creditsBefore, spentBefore, callsBefore = totalsOf(b)
local spendingLimit = b.spendingLimit
-- The checks read the quota use of now's day and month; the reply keeps the balance as stored.
rollOver(b, now)

local stored = {}
local storedReply = {}
local tats = {}
local function take(bucket, label, limit)
  local tat = tats[bucket]
  if tat == nil then
    local s = redis.call('GET', bucket)
    if stored[bucket] == nil then
      stored[bucket] = true
      storedReply[#storedReply + 1] = label
      storedReply[#storedReply + 1] = s or ''
    end
    if s then tat = tonumber(s) end
  end
  local interval = 60000 / limit
  local base = now
  if tat ~= nil and tat >= now then base = tat end
  local after = base + 1 * interval
  if after - 60000 > now then return false end
  tats[bucket] = after
  return true
end

local running = 0
local failed, reason = 0, ''
for i = 1, n do
  local at = 12 + (i - 1) * 5
  local tool, credits, toolLimit, acl = ARGV[at + 1], num(ARGV[at + 2]), num(ARGV[at + 3]), ARGV[at + 4]
  if acl ~= '' then
    failed, reason = i, acl
  elseif globalLimit > 0 and not take(P .. 'rl:' .. id, '', globalLimit) then
    failed, reason = i, 'rate_limited'
  elseif toolLimit > 0 and not take(P .. 'rl:' .. id .. ':' .. tool, tool, toolLimit) then
    failed, reason = i, 'tool_rate_limited'
  else
    local total = running + credits
    if total > b.credits then
      failed, reason = i, 'insufficient_credits'
    elseif spendingLimit > 0 and b.totalSpent + total > spendingLimit then
      failed, reason = i, 'spending_limit_exceeded'
    elseif dailyCallLimit > 0 and b.dailyCalls + i > dailyCallLimit then
      failed, reason = i, 'daily_call_quota_exceeded'
    elseif monthlyCallLimit > 0 and b.monthlyCalls + i > monthlyCallLimit then
      failed, reason = i, 'monthly_call_quota_exceeded'
    elseif dailyCreditLimit > 0 and b.dailyCredits + total > dailyCreditLimit then
      failed, reason = i, 'daily_credit_quota_exceeded'
    elseif monthlyCreditLimit > 0 and b.monthlyCredits + total > monthlyCreditLimit then
      failed, reason = i, 'monthly_credit_quota_exceeded'
    else
      running = total
    end
  end
  if failed > 0 then break end
end

if failed > 0 then
  local tool = ARGV[12 + (failed - 1) * 5 + 1]
  if shadow then
    addKeyEvent(now, id, b, tool, 0, 'shadow', reason)
    return {'shadow', fmt(now), balanceBefore, storedReply, tostring(failed), reason}
  end
  addKeyEvent(now, id, b, tool, 0, 'denied', reason)
  bumpTool(ARGV[12 + (failed - 1) * 5 + 5], 0, 0, 1)
  countDenial(b.namespace, reason)
  return {'denied', fmt(now), balanceBefore, storedReply, tostring(failed), reason}
end

applyCharge(b, running, n, now)
b.inflightCredits = b.inflightCredits + running
b.inflightCalls = b.inflightCalls + n
saveBalance(key, b)
addBalanceTotals(b, creditsBefore, spentBefore, callsBefore)
for bucket, tat in pairs(tats) do
  redis.call('SET', bucket, fmt(tat), 'PXAT', fmt(math.ceil(tat)))
end

local reservation = {'key', id, 'inst', instance, 'at', fmt(now), 'n', ARGV[12], 'open', ARGV[12]}
for i = 1, n do
  local at = 12 + (i - 1) * 5
  local charge = format('%d', i)
  reservation[#reservation + 1] = 'c' .. charge
  reservation[#reservation + 1] = ARGV[at + 2]
  reservation[#reservation + 1] = 't' .. charge
  reservation[#reservation + 1] = ARGV[at + 1]
  reservation[#reservation + 1] = 'w' .. charge
  reservation[#reservation + 1] = ARGV[at + 5]
end
redis.call('HSET', resKey, unpack(reservation))
redis.call('SADD', P .. 'inst:' .. instance, reservationId)
redis.call('ZADD', P .. 'instances', 'NX', fmt(now + leaseMs), instance)
return {'ok', fmt(now), balanceBefore, storedReply, '0', ''}
`;
