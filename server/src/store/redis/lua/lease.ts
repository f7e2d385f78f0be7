import { PRELUDE } from './prelude.ts';
import { RESERVATIONS } from './reservations.ts';

/**
 * An instance's heartbeat, and the reaper of dead instances' calls: renews this instance's lease
 * (Redis time + lease ms), then refunds as `interrupted` the open charges of instances whose lease
 * has run out: they stopped between admitting calls and settling them, so those callers got no
 * answer. At most `budget` reservations per run; an instance is forgotten once none is left.
 *
 * ARGV: instance id, lease ms, budget. Replies how many calls were refunded.
 */
export const LEASE = PRELUDE + RESERVATIONS + String.raw`
local now = clock()
local instances = P .. 'instances'
redis.call('ZADD', instances, fmt(now + tonumber(ARGV[2])), ARGV[1])
local budget = tonumber(ARGV[3])
local refunded = 0
for _, instance in ipairs(redis.call('ZRANGEBYSCORE', instances, '-inf', '(' .. fmt(now), 'LIMIT', 0, 16)) do
  if budget <= 0 then break end
  local open = P .. 'inst:' .. instance
  local reason = 'the gate instance ' .. instance .. ' stopped (its lease ran out) while the call was in flight; refunded'
  for _, id in ipairs(redis.call('SRANDMEMBER', open, budget)) do
    for i = 1, num(redis.call('HGET', P .. 'res:' .. id, 'n')) do
      local r, c, resKey = loadCharge(id, i)
      if r and not c[4] then
        refundCharge(r, resKey, i, c, 'interrupted', reason, now)
        refunded = refunded + 1
      end
    end
    redis.call('SREM', open, id)
    budget = budget - 1
  end
  if redis.call('SCARD', open) == 0 then redis.call('ZREM', instances, instance) end
end
return refunded
`;
