import { PRELUDE } from './prelude.ts';
import { RESERVATIONS } from './reservations.ts';

/**
 * Settlement of charges, several in one step (the settlements of one event-loop turn): each keeps
 * its charge (a `charged` event, the tool's stats) or refunds it (credits, totals and quota back, a
 * `refunded` event). Idempotent per charge: settling it again changes nothing, except that a refund
 * overrides an earlier keep. That is for recovery: when a keep's answer was lost (timeout), the
 * client withholds the call's answer, so it must be sure the customer is not charged. A reservation
 * id that is not stored (its admission never arrived, or not yet) is remembered as cancelled, so
 * that the admission, if it arrives later, admits nothing.
 *
 * ARGV: number of settlements, then per settlement: reservation id, charge index (1-based),
 * 'keep' or 'refund', refund reason. Replies one status per settlement: 'kept', 'refunded'
 * (a keep finds 'refunded' when the charge was refunded first, by a refund or by the lease reaper),
 * or 'cancelled'.
 */
export const SETTLE = PRELUDE + RESERVATIONS + String.raw`
local now = clock()
local replies = {}
for s = 1, tonumber(ARGV[1]) do
  local at = 1 + (s - 1) * 4
  local id, i, action, reason = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local r, resKey = loadReservation(id)
  if not r then
    redis.call('HSET', resKey, 'cancelled', '1')
    redis.call('PEXPIRE', resKey, SETTLED_TTL_MS)
    replies[s] = 'cancelled'
  elseif action == 'keep' then
    replies[s] = keepCharge(r, resKey, i, now)
  else
    replies[s] = refundCharge(r, resKey, i, 'refunded', reason, now)
  end
end
return replies
`;
