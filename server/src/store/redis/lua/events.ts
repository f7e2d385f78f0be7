import { PRELUDE } from './prelude.ts';

/**
 * A refusal the client decided alone (key checks before admission): a `denied` event with the
 * tool's denied count and the deny reason, or a `shadow` event.
 * ARGV: key id, tool, reason, status ('denied' | 'shadow'), tool stats row. Replies the event id.
 */
export const REFUSAL = PRELUDE + String.raw`
local now = clock()
local id, tool, reason, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local names = loadKeyNames(id)
local eventId = addKeyEvent(now, id, names, tool, 0, status, reason)
if status == 'denied' then
  bumpTool(ARGV[5], 0, 0, 1)
  countDenial(names.namespace, reason)
end
return eventId
`;

/**
 * Usage retention: deletes up to `limit` of the oldest events with an id below `beforeId`, and the
 * per-minute index entries of minutes that no event is left in. Replies how many events.
 * ARGV: beforeId, limit.
 */
export const TRIM_EVENTS = PRELUDE + String.raw`
local stream = P .. 'usage'
local oldest = redis.call('XRANGE', stream, '-', '(' .. ARGV[1] .. '-0', 'COUNT', tonumber(ARGV[2]))
if #oldest == 0 then return 0 end
local last = oldest[#oldest]
local lastId = tonumber(string.match(last[1], '^(%d+)'))
redis.call('XTRIM', stream, 'MINID', (lastId + 1) .. '-0')
local at
for f = 1, #last[2], 2 do
  if last[2][f] == 'at' then at = tonumber(last[2][f + 1]) end
end
if at then redis.call('ZREMRANGEBYSCORE', P .. 'evmin', '-inf', '(' .. fmt(math.floor(at / 60000))) end
return #oldest
`;
