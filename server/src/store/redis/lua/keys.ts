import { PRELUDE } from './prelude.ts';

/**
 * Lua shared by the admin scripts: storing a key with its hash mapping, the id and namespace
 * indexes and its namespace's totals. A hash is taken while a key has it, and for good once a
 * rotation retired it.
 */
const STORE_KEY = String.raw`
local function taken(hash)
  if redis.call('EXISTS', P .. 'retired:' .. hash) == 1 then return 'retired' end
  if redis.call('EXISTS', P .. 'hash:' .. hash) == 1 then return 'stored' end
  return nil
end

-- A key's fields in the order they are stored: those every admission reads come first (in the
-- order of the prelude's loadKey), because a small hash is a listpack, in which finding a field
-- means stepping over every field stored before it.
local KEY_FIELDS = {'credits', 'totalSpent', 'totalCalls', 'lastUsedAt', 'day', 'month',
  'dailyCalls', 'dailyCredits', 'monthlyCalls', 'monthlyCredits', 'inflightCredits', 'inflightCalls',
  'rev', 'spendingLimit', 'keyPrefix', 'name', 'namespace'}

local function storeKey(id, fields)
  local record = {inflightCredits = '0', inflightCalls = '0', rev = '1'}
  for field, value in pairs(fields) do
    if field ~= 'id' then record[field] = value end
  end
  local args = {}
  for _, field in ipairs(KEY_FIELDS) do
    if record[field] ~= nil then
      args[#args + 1] = field
      args[#args + 1] = record[field]
      record[field] = nil
    end
  end
  for field, value in pairs(record) do
    args[#args + 1] = field
    args[#args + 1] = value
  end
  local namespace = fields.namespace
  redis.call('HSET', P .. 'key:' .. id, unpack(args))
  redis.call('SET', P .. 'hash:' .. fields.keyHash, id)
  redis.call('ZADD', P .. 'keys', id, id)
  redis.call('ZADD', P .. 'ns:' .. namespace, id, id)
  redis.call('SADD', P .. 'namespaces', namespace)
  addTotals(namespace, 1, fields.active == '1' and 1 or 0, num(fields.credits), num(fields.totalSpent), num(fields.totalCalls))
end
`;

/**
 * Stores new keys. ARGV[1] is the mode, then one JSON object of fields (codec.ts) per key:
 * - 'one': one key; replies {'ok', id}, or {'taken', 'stored' | 'retired'} and stores nothing.
 * - 'missing': the keys whose hash is not taken (nor repeated in the list), all in this step;
 *   replies {'ok', how many}.
 * - 'restore' (migration): keys with their own `id`, none of them stored yet; replies {'ok', how many}
 *   or {'taken', the first id or hash in the way} and stores nothing.
 */
export const INSERT_KEYS = PRELUDE + STORE_KEY + String.raw`
local mode = ARGV[1]
local records = {}
for i = 2, #ARGV do records[#records + 1] = cjson.decode(ARGV[i]) end
if mode == 'one' then
  local why = taken(records[1].keyHash)
  if why then return {'taken', why} end
  local id = redis.call('INCR', P .. 'seq:key')
  storeKey(id, records[1])
  redis.call('PUBLISH', P .. 'changes', cjson.encode({id = id, hashes = {records[1].keyHash}}))
  return {'ok', tostring(id)}
end
if mode == 'restore' then
  local highest = num(redis.call('GET', P .. 'seq:key'))
  for _, fields in ipairs(records) do
    if taken(fields.keyHash) then return {'taken', fields.keyHash} end
    if redis.call('EXISTS', P .. 'key:' .. fields.id) == 1 then return {'taken', tostring(fields.id)} end
  end
  for _, fields in ipairs(records) do
    storeKey(fields.id, fields)
    highest = math.max(highest, tonumber(fields.id))
  end
  redis.call('SET', P .. 'seq:key', fmt(highest))
  return {'ok', tostring(#records)}
end
local seen = {}
local stored = 0
for _, fields in ipairs(records) do
  if not seen[fields.keyHash] and not taken(fields.keyHash) then
    seen[fields.keyHash] = true
    storeKey(redis.call('INCR', P .. 'seq:key'), fields)
    stored = stored + 1
  end
end
if stored > 0 then redis.call('PUBLISH', P .. 'changes', cjson.encode({hashes = {}})) end
return {'ok', tostring(stored)}
`;

/**
 * An admin change to one key, as a diff the client computed: ARGV[1] the key id, ARGV[2] JSON
 * {set = {field = value}, add = {field = delta}, policy = true|false}. Balance fields come as
 * differences (`add`), so that a top-up adds to whatever the balance is now, calls in flight
 * included; the others are written as given. A new keyHash moves the hash mapping and retires the
 * old hash for good. The namespace totals follow. `rev` goes up when a field the client decides on
 * (activity, expiry, tools, IP allowlist, limits) changes, so that admissions decided on the old
 * record come back 'stale'. The change is published for every instance's cache.
 * Replies {'ok', HGETALL of the key}, {'missing'}, or {'taken', 'stored' | 'retired'}.
 */
export const UPDATE_KEY = PRELUDE + STORE_KEY + String.raw`
local id = ARGV[1]
local diff = cjson.decode(ARGV[2])
local key = P .. 'key:' .. id
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local TOTALS = {'keyHash', 'namespace', 'active', 'credits', 'totalSpent', 'totalCalls'}
local function totalsOf()
  local v = redis.call('HMGET', key, unpack(TOTALS))
  return {hash = v[1], namespace = v[2] or 'default', active = v[3] == '1' and 1 or 0,
    credits = num(v[4]), spent = num(v[5]), calls = num(v[6])}
end
local old = totalsOf()
local newHash = diff.set.keyHash
if newHash ~= nil and newHash ~= old.hash then
  local why = taken(newHash)
  if why then return {'taken', why} end
end
for field, value in pairs(diff.set) do redis.call('HSET', key, field, value) end
for field, delta in pairs(diff.add) do redis.call('HINCRBYFLOAT', key, field, delta) end
if newHash ~= nil and newHash ~= old.hash then
  redis.call('DEL', P .. 'hash:' .. old.hash)
  redis.call('SET', P .. 'retired:' .. old.hash, id)
  redis.call('SET', P .. 'hash:' .. newHash, id)
end
local new = totalsOf()
if new.namespace ~= old.namespace then
  addTotals(old.namespace, -1, -old.active, -old.credits, -old.spent, -old.calls)
  addTotals(new.namespace, 1, new.active, new.credits, new.spent, new.calls)
  redis.call('ZREM', P .. 'ns:' .. old.namespace, id)
  redis.call('ZADD', P .. 'ns:' .. new.namespace, id, id)
  redis.call('SADD', P .. 'namespaces', new.namespace)
else
  addTotals(new.namespace, 0, new.active - old.active, new.credits - old.credits, new.spent - old.spent, new.calls - old.calls)
end
if diff.policy then redis.call('HINCRBY', key, 'rev', 1) end
redis.call('PUBLISH', P .. 'changes', cjson.encode({id = tonumber(id), hashes = {old.hash, new.hash}}))
return {'ok', redis.call('HGETALL', key)}
`;

/**
 * Reads one key by hash ('hash', keyHash) or by id ('id', id) in one step. Replies {id, HGETALL}
 * or {} when there is none.
 */
export const FIND_KEY = String.raw`#!lua flags=no-writes
local P = KEYS[1] .. ':'
local id = ARGV[2]
if ARGV[1] == 'hash' then
  id = redis.call('GET', P .. 'hash:' .. ARGV[2])
  if not id then return {} end
end
local fields = redis.call('HGETALL', P .. 'key:' .. id)
if #fields == 0 then return {} end
return {id, fields}
`;
