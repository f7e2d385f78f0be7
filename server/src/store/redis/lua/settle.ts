import { PRELUDE } from './prelude.ts';
import { RESERVATIONS } from './reservations.ts';

/**
 * Settlement of charges, several in one step (the settlements of one event-loop turn). Each one is
 * an action on one charge:
 *
 * - `keep`: a `charged` event and the tool's stats;
 * - `refund`: credits, totals and quota back, a `refunded` event with the reason;
 * - `withhold`: the recovery of a keep whose answer was lost (a timeout). The gate withheld the
 *   call's answer, so the customer must not pay: the charge is refunded even if that keep ran, and
 *   then the refund's reason names the `charged` event it reverses, so that the books can be netted.
 *   Only the gate's own retry queue sends it (settler.ts), never a caller of `Ledger.settle`.
 *
 * The first settlement of a charge wins: `keep` and `refund` of a settled charge change nothing and
 * reply how it was settled. A reservation id that is not stored (its admission never arrived, or not
 * yet) is remembered as cancelled, so that the admission, if it arrives later, admits nothing.
 *
 * ARGV: number of settlements, then per settlement: reservation id, charge index (1-based), action
 * ('keep' | 'refund' | 'withhold'), refund reason. Replies one status per settlement: 'kept' or
 * 'refunded' (how the charge is settled now), or 'cancelled'.
 */
export const SETTLE = PRELUDE + RESERVATIONS + String.raw`
local function withholdCharge(r, resKey, i, c, reason, now)
  if c[4] == 'r' then return 'refunded' end
  if c[4] == 'k' then reason = reason .. '; the charge of event ' .. redis.call('HGET', resKey, 'e' .. i) .. ' is refunded' end
  return giveBack(r, resKey, i, c, 'refunded', reason, now)
end

local now = clock()
local replies = {}
for s = 1, tonumber(ARGV[1]) do
  local at = 1 + (s - 1) * 4
  local id, i, action, reason = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local r, c, resKey = loadCharge(id, i)
  if not r then
    redis.call('HSET', resKey, 'cancelled', '1')
    redis.call('PEXPIRE', resKey, SETTLED_TTL_MS)
    replies[s] = 'cancelled'
  elseif action == 'keep' then
    replies[s] = keepCharge(r, resKey, i, c, now)
  elseif action == 'withhold' then
    replies[s] = withholdCharge(r, resKey, i, c, reason, now)
  else
    replies[s] = refundCharge(r, resKey, i, c, 'refunded', reason, now)
  end
end
return replies
`;
