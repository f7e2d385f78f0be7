import type { KeyRecord } from '../../gate/types.ts';
import { displayPrefix, generateApiKey, hashApiKey } from '../../keys/apiKey.ts';
import { expiryOf, keyFieldProperties, newKeyRecord, quotaLimits, quotaSchema, type KeyFields } from '../../keys/fields.ts';
import { importKeys, parseKeyImport } from '../../keys/import.ts';
import type { Ledger } from '../../store/contract.ts';
import { HttpError } from '../respond.ts';
import { intParam, namespaceParam } from './params.ts';
import { publicKey } from './present.ts';
import { route, type Route } from './router.ts';

/** A key is named by its value (`key`) or by its id from `GET /keys` (`id`). */
interface Target {
  key?: string;
  id?: number;
}

const targetProperties = {
  key: { type: 'string', minLength: 1, maxLength: 512 },
  id: { type: 'integer', minimum: 1 },
} as const;

function bodySchema(properties: object, required: string[] = []): object {
  return { type: 'object', additionalProperties: false, required, properties: { ...targetProperties, ...properties } };
}

const IMPORT_LIMIT_BYTES = 64 * 1024 * 1024;

export function keyRoutes(ledger: Ledger): Route[] {
  const find = async (target: Target): Promise<KeyRecord> => {
    if ((target.key === undefined) === (target.id === undefined)) {
      throw new HttpError(400, 'name the key either by "key" (the key itself) or by "id" (from GET /keys), not both');
    }
    const record = target.key !== undefined ? await ledger.findByHash(hashApiKey(target.key)) : await ledger.findById(target.id!);
    if (!record) throw new HttpError(404, 'no such key');
    return record;
  };
  /** Applies `change` to the key as it stands when the change is made (not as it was when found). */
  const edit = async (target: Target, change: (draft: KeyRecord) => void): Promise<KeyRecord> => {
    const { id } = await find(target);
    const record = await ledger.update(id, change);
    if (!record) throw new HttpError(404, 'no such key');
    return record;
  };
  /** As `edit`, refused (409) if the key is revoked by then. */
  const editActive = (target: Target, action: string, change: (draft: KeyRecord) => void): Promise<KeyRecord> =>
    edit(target, (draft) => {
      if (!draft.active) throw new HttpError(409, `the key is revoked, so it cannot be ${action}`);
      change(draft);
    });

  return [
    route<KeyFields>({
      method: 'POST',
      path: '/keys',
      access: 'admin',
      bodySchema: { type: 'object', additionalProperties: false, properties: keyFieldProperties },
      async handle({ body, now }) {
        const key = generateApiKey();
        const record = await ledger.insert(newKeyRecord(body, hashApiKey(key), displayPrefix(key), now));
        return {
          status: 201,
          json: { key, ...publicKey(record, now), message: 'Store this key now: PayGate keeps only its hash and cannot show it again.' },
        };
      },
    }),
    route<undefined>({
      method: 'GET',
      path: '/keys',
      access: 'admin',
      async handle({ url, now }) {
        const namespace = namespaceParam(url);
        const limit = intParam(url, 'limit', 1, 10_000);
        const offset = intParam(url, 'offset', 0, Number.MAX_SAFE_INTEGER) ?? 0;
        const query = { ...(namespace === undefined ? {} : { namespace }), ...(limit === undefined ? {} : { limit, offset }) };
        const [records, total] = await Promise.all([ledger.listKeys(query), ledger.countKeys(query)]);
        return { json: records.map((record) => publicKey(record, now)), headers: { 'x-total-count': String(total) } };
      },
    }),
    route<Target & { credits: number }>({
      method: 'POST',
      path: '/topup',
      access: 'admin',
      bodySchema: bodySchema({ credits: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } }, ['credits']),
      async handle({ body }) {
        const record = await editActive(body, 'topped up', (draft) => {
          draft.credits += body.credits;
        });
        return { json: { id: record.id, credits: record.credits, message: `Added ${body.credits} credits` } };
      },
    }),
    route<Target>({
      method: 'POST',
      path: '/keys/revoke',
      access: 'admin',
      bodySchema: bodySchema({}),
      async handle({ body }) {
        const record = await editActive(body, 'revoked again', (draft) => {
          draft.active = false;
        });
        return { json: { id: record.id, active: false, message: 'Key revoked' } };
      },
    }),
    route<Target>({
      method: 'POST',
      path: '/keys/rotate',
      access: 'admin',
      bodySchema: bodySchema({}),
      async handle({ body, now }) {
        const newKey = generateApiKey();
        const record = await editActive(body, 'rotated', (draft) => {
          draft.keyHash = hashApiKey(newKey);
          draft.keyPrefix = displayPrefix(newKey);
        });
        return {
          json: { newKey, ...publicKey(record, now), message: 'Key rotated: the old key no longer works. Store the new one now; it cannot be shown again.' },
        };
      },
    }),
    route<Target & { allowedTools?: string[]; deniedTools?: string[] }>({
      method: 'POST',
      path: '/keys/acl',
      access: 'admin',
      bodySchema: bodySchema({ allowedTools: keyFieldProperties.allowedTools, deniedTools: keyFieldProperties.deniedTools }),
      async handle({ body }) {
        if (body.allowedTools === undefined && body.deniedTools === undefined) {
          throw new HttpError(400, 'give allowedTools, deniedTools or both ([] clears a list)');
        }
        const record = await edit(body, (draft) => {
          if (body.allowedTools) draft.allowedTools = [...new Set(body.allowedTools)];
          if (body.deniedTools) draft.deniedTools = [...new Set(body.deniedTools)];
        });
        return { json: { id: record.id, allowedTools: record.allowedTools, deniedTools: record.deniedTools, message: 'ACL updated' } };
      },
    }),
    route<Target & Pick<KeyFields, 'expiresIn' | 'expiresAt'>>({
      method: 'POST',
      path: '/keys/expiry',
      access: 'admin',
      bodySchema: bodySchema({ expiresIn: keyFieldProperties.expiresIn, expiresAt: keyFieldProperties.expiresAt }),
      async handle({ body, now }) {
        const expiresAt = expiryOf(body, now);
        if (expiresAt === undefined) throw new HttpError(400, 'give expiresIn (seconds from now) or expiresAt (an ISO date, or null for never)');
        const record = await edit(body, (draft) => {
          draft.expiresAt = expiresAt;
        });
        const when = record.expiresAt === null ? null : new Date(record.expiresAt).toISOString();
        return { json: { id: record.id, expiresAt: when, message: when ? `Key expires at ${when}` : 'Key never expires' } };
      },
    }),
    route<Target & { remove?: boolean } & Record<string, unknown>>({
      method: 'POST',
      path: '/keys/quota',
      access: 'admin',
      bodySchema: bodySchema({ ...quotaSchema.properties, remove: { type: 'boolean' } }),
      async handle({ body }) {
        const { key: _key, id: _id, remove, ...limits } = body;
        if (remove === true) {
          if (Object.keys(limits).length > 0) throw new HttpError(400, 'give either remove: true or quota limits, not both');
          const record = await edit(body, (draft) => {
            draft.quota = null;
          });
          return { json: { id: record.id, quota: null, message: 'Quota removed: the global quota applies' } };
        }
        if (Object.keys(limits).length === 0) {
          throw new HttpError(400, 'give at least one of dailyCallLimit, monthlyCallLimit, dailyCreditLimit, monthlyCreditLimit (0 = no limit), or remove: true');
        }
        const record = await edit(body, (draft) => {
          draft.quota = quotaLimits({ ...draft.quota, ...limits });
        });
        return { json: { id: record.id, quota: record.quota, message: 'Quota set' } };
      },
    }),
    route<Target & { tags: Record<string, string | null> }>({
      method: 'POST',
      path: '/keys/tags',
      access: 'admin',
      bodySchema: bodySchema(
        {
          tags: {
            type: 'object',
            maxProperties: 50,
            propertyNames: { maxLength: 100 },
            additionalProperties: { type: ['string', 'null'], maxLength: 100 },
          },
        },
        ['tags'],
      ),
      async handle({ body }) {
        const record = await edit(body, (draft) => {
          const merged: Record<string, string> = { ...draft.tags };
          for (const [tag, value] of Object.entries(body.tags)) {
            if (value === null) delete merged[tag];
            else merged[tag] = value;
          }
          if (Object.keys(merged).length > 50) throw new HttpError(400, 'a key may have at most 50 tags');
          draft.tags = merged;
        });
        return { json: { id: record.id, tags: record.tags, message: 'Tags updated' } };
      },
    }),
    route<Target & { ips: string[] }>({
      method: 'POST',
      path: '/keys/ip',
      access: 'admin',
      bodySchema: bodySchema({ ips: keyFieldProperties.ipAllowlist }, ['ips']),
      async handle({ body }) {
        const record = await edit(body, (draft) => {
          draft.ipAllowlist = [...new Set(body.ips)];
        });
        return { json: { id: record.id, ipAllowlist: record.ipAllowlist, message: 'IP allowlist updated' } };
      },
    }),
    route<{ tags: Record<string, string>; namespace?: string }>({
      method: 'POST',
      path: '/keys/search',
      access: 'admin',
      bodySchema: {
        type: 'object',
        additionalProperties: false,
        required: ['tags'],
        properties: {
          tags: { ...keyFieldProperties.tags, minProperties: 1 },
          namespace: keyFieldProperties.namespace,
        },
      },
      async handle({ body, now }) {
        const query = { tags: body.tags, ...(body.namespace === undefined ? {} : { namespace: body.namespace.toLowerCase() }) };
        const keys = (await ledger.listKeys(query)).map((record) => publicKey(record, now));
        return { json: { keys, count: keys.length } };
      },
    }),
    route<Target & { spendingLimit: number }>({
      method: 'POST',
      path: '/limits',
      access: 'admin',
      bodySchema: bodySchema({ spendingLimit: keyFieldProperties.spendingLimit }, ['spendingLimit']),
      async handle({ body }) {
        const record = await edit(body, (draft) => {
          draft.spendingLimit = body.spendingLimit;
        });
        const message = record.spendingLimit === 0 ? 'Spending limit removed' : `Spending limit set to ${record.spendingLimit} credits`;
        return { json: { id: record.id, spendingLimit: record.spendingLimit, message } };
      },
    }),
    route<string>({
      method: 'POST',
      path: '/keys/import',
      access: 'admin',
      rawBody: true,
      maxBodyBytes: IMPORT_LIMIT_BYTES,
      async handle({ body, now }) {
        const parsed = parseKeyImport(body, now);
        if (parsed.errors.length > 0) {
          throw new HttpError(400, `nothing was imported: ${parsed.errors.slice(0, 20).join('; ')}${parsed.errors.length > 20 ? ` (and ${parsed.errors.length - 20} more)` : ''}`);
        }
        const outcome = await importKeys(ledger, parsed.keys);
        return { json: { ...outcome, ignoredFields: parsed.ignoredFields } };
      },
    }),
  ];
}
