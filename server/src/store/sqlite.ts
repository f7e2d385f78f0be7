import { randomUUID } from 'node:crypto';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { KeyRecord, QuotaLimits } from '../gate/types.ts';
import { Aggregates, AGGREGATES_SCHEMA, buildAggregates } from './aggregates.ts';
import type {
  BalanceRow,
  Durability,
  EventStatus,
  KeyQuery,
  KeyTotals,
  LedgerBatch,
  NamespaceSummary,
  Store,
  ToolStats,
  UsageEvent,
  UsageQuery,
} from './types.ts';

/** 2: totals kept by triggers (aggregates.ts), built once from the rows of a version 1 file. */
const SCHEMA_VERSION = 2;

/** `PRAGMA application_id` of a PayGate state database ("PGMC"): other programs' SQLite files are refused. */
export const APPLICATION_ID = 0x50474d43;
/** The tables a PayGate state database made before it carried `APPLICATION_ID` is recognised by. */
const PAYGATE_TABLES = ['keys', 'events', 'meta'];
/** Meta entry: a random id made when the database is created; the ledger journal carries it. */
export const DATABASE_ID = 'database-id';

/** Meta entry: the last event id included in the stored per-tool totals. */
const TOOL_STATS_THROUGH = 'tool-stats-through-event';
/** Meta entry: the newest event id deleted by retention, so that ids are never given out twice. */
export const EVENTS_DELETED_THROUGH = 'events-deleted-through';
/** Events per multi-row INSERT when the ledger applies its journal. */
const EVENTS_PER_INSERT = 64;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS keys (
  id INTEGER PRIMARY KEY,
  key_hash TEXT NOT NULL UNIQUE,
  key_prefix TEXT NOT NULL,
  name TEXT NOT NULL,
  namespace TEXT NOT NULL,
  credits INTEGER NOT NULL,
  total_spent INTEGER NOT NULL,
  total_calls INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  active INTEGER NOT NULL,
  spending_limit INTEGER NOT NULL,
  allowed_tools TEXT NOT NULL,
  denied_tools TEXT NOT NULL,
  expires_at INTEGER,
  tags TEXT NOT NULL,
  ip_allowlist TEXT NOT NULL,
  quota TEXT,
  usage_day TEXT NOT NULL,
  usage_month TEXT NOT NULL,
  daily_calls INTEGER NOT NULL,
  daily_credits INTEGER NOT NULL,
  monthly_calls INTEGER NOT NULL,
  monthly_credits INTEGER NOT NULL,
  inflight_credits INTEGER NOT NULL DEFAULT 0,
  inflight_calls INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS keys_by_namespace ON keys(namespace);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  key_id INTEGER,
  key_prefix TEXT NOT NULL,
  key_name TEXT NOT NULL,
  namespace TEXT NOT NULL,
  tool TEXT NOT NULL,
  credits INTEGER NOT NULL,
  status TEXT NOT NULL,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS events_by_key ON events(key_id, id);
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS retired_hashes (
  hash TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS keys_retire_rotated_hash AFTER UPDATE OF key_hash ON keys
WHEN OLD.key_hash <> NEW.key_hash
BEGIN
  INSERT OR IGNORE INTO retired_hashes (hash) VALUES (OLD.key_hash);
END;
CREATE TABLE IF NOT EXISTS tool_stats (
  tool TEXT PRIMARY KEY,
  calls INTEGER NOT NULL,
  credits INTEGER NOT NULL,
  denied INTEGER NOT NULL
);
${AGGREGATES_SCHEMA}
`;

const KEY_FIELDS = [
  'key_hash', 'key_prefix', 'name', 'namespace', 'credits', 'total_spent', 'total_calls', 'created_at',
  'last_used_at', 'active', 'spending_limit', 'allowed_tools', 'denied_tools', 'expires_at', 'tags',
  'ip_allowlist', 'quota', 'usage_day', 'usage_month', 'daily_calls', 'daily_credits', 'monthly_calls',
  'monthly_credits',
] as const;

const KEY_COLUMNS = ['id', ...KEY_FIELDS].join(', ');

type KeyRow = Record<(typeof KEY_FIELDS)[number] | 'id', SQLInputValue>;
type EventRow = Record<keyof typeof EVENT_COLUMNS, SQLInputValue>;
type Row = Record<string, SQLInputValue>;

const EVENT_COLUMNS = {
  id: 0, at: 0, key_id: 0, key_prefix: 0, key_name: 0, namespace: 0, tool: 0, credits: 0, status: 0, reason: 0,
} as const;

function num(value: SQLInputValue): number {
  return Number(value);
}

function numOrNull(value: SQLInputValue): number | null {
  return value === null ? null : Number(value);
}

function toKey(row: KeyRow): KeyRecord {
  return {
    id: num(row.id),
    keyHash: String(row.key_hash),
    keyPrefix: String(row.key_prefix),
    name: String(row.name),
    namespace: String(row.namespace),
    credits: num(row.credits),
    totalSpent: num(row.total_spent),
    totalCalls: num(row.total_calls),
    createdAt: num(row.created_at),
    lastUsedAt: numOrNull(row.last_used_at),
    active: row.active === 1,
    spendingLimit: num(row.spending_limit),
    allowedTools: JSON.parse(String(row.allowed_tools)) as string[],
    deniedTools: JSON.parse(String(row.denied_tools)) as string[],
    expiresAt: numOrNull(row.expires_at),
    tags: JSON.parse(String(row.tags)) as Record<string, string>,
    ipAllowlist: JSON.parse(String(row.ip_allowlist)) as string[],
    quota: row.quota === null ? null : (JSON.parse(String(row.quota)) as QuotaLimits),
    usage: {
      day: String(row.usage_day),
      month: String(row.usage_month),
      dailyCalls: num(row.daily_calls),
      dailyCredits: num(row.daily_credits),
      monthlyCalls: num(row.monthly_calls),
      monthlyCredits: num(row.monthly_credits),
    },
  };
}

function keyParams(record: Omit<KeyRecord, 'id'>): Record<(typeof KEY_FIELDS)[number], SQLInputValue> {
  return {
    key_hash: record.keyHash,
    key_prefix: record.keyPrefix,
    name: record.name,
    namespace: record.namespace,
    credits: record.credits,
    total_spent: record.totalSpent,
    total_calls: record.totalCalls,
    created_at: record.createdAt,
    last_used_at: record.lastUsedAt,
    active: record.active ? 1 : 0,
    spending_limit: record.spendingLimit,
    allowed_tools: JSON.stringify(record.allowedTools),
    denied_tools: JSON.stringify(record.deniedTools),
    expires_at: record.expiresAt,
    tags: JSON.stringify(record.tags),
    ip_allowlist: JSON.stringify(record.ipAllowlist),
    quota: record.quota === null ? null : JSON.stringify(record.quota),
    usage_day: record.usage.day,
    usage_month: record.usage.month,
    daily_calls: record.usage.dailyCalls,
    daily_credits: record.usage.dailyCredits,
    monthly_calls: record.usage.monthlyCalls,
    monthly_credits: record.usage.monthlyCredits,
  };
}

function toEvent(row: EventRow): UsageEvent {
  return {
    id: num(row.id),
    at: num(row.at),
    keyId: numOrNull(row.key_id),
    keyPrefix: String(row.key_prefix),
    keyName: String(row.key_name),
    namespace: String(row.namespace),
    tool: String(row.tool),
    credits: num(row.credits),
    status: String(row.status) as EventStatus,
    reason: row.reason === null ? null : String(row.reason),
  };
}

/** Appends an event's values, in the order of `EVENT_COLUMNS`, to `params`. */
function pushEventParams(params: SQLInputValue[], e: UsageEvent): SQLInputValue[] {
  params.push(e.id, e.at, e.keyId, e.keyPrefix, e.keyName, e.namespace, e.tool, e.credits, e.status, e.reason);
  return params;
}

/** `WHERE` clauses and parameters for a key listing. */
function keyFilter(query: KeyQuery): { where: string; params: SQLInputValue[] } {
  const clauses: string[] = [];
  const params: SQLInputValue[] = [];
  if (query.namespace !== undefined) {
    clauses.push('namespace = ?');
    params.push(query.namespace);
  }
  for (const [tag, value] of Object.entries(query.tags ?? {})) {
    clauses.push('json_extract(tags, ?) = ?');
    params.push(`$.${JSON.stringify(tag)}`, value);
  }
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

function pragma(db: DatabaseSync, name: string): number {
  return num((db.prepare(`PRAGMA ${name}`).get() as Row)[name]!);
}

/** What a database file holds, as `identifyDatabase` finds it. */
export type DatabaseIdentity =
  | { owner: 'paygate'; meta: ReadonlyMap<string, string> }
  | { owner: 'other'; applicationId: number; tables: string[] };

/**
 * Whose database `file` is, read without writing to it: PayGate's (it carries `APPLICATION_ID`, or
 * it is blank, or it has PayGate's tables from before the id), or another program's.
 */
export function identifyDatabase(file: string): DatabaseIdentity {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const applicationId = pragma(db, 'application_id');
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Row[]).map((row) => String(row.name));
    const blank = applicationId === 0 && tables.length === 0;
    const ours = applicationId === APPLICATION_ID || (applicationId === 0 && PAYGATE_TABLES.every((table) => tables.includes(table)));
    if (!blank && !ours) return { owner: 'other', applicationId, tables };
    const rows = tables.includes('meta') ? (db.prepare('SELECT name, value FROM meta').all() as Row[]) : [];
    return { owner: 'paygate', meta: new Map(rows.map((row) => [String(row.name), String(row.value)])) };
  } finally {
    db.close();
  }
}

/**
 * Opens the database, sets it up and migrates it: a new or older database gets the schema, the
 * application id and a database id. Closes it again if any of that fails.
 */
function openDatabase(location: string, durability: Durability): DatabaseSync {
  const db = new DatabaseSync(location);
  try {
    // New files get SQLite's default 4 KiB pages: the ledger writes hundreds of rows per transaction.
    // `FULL` syncs each commit: for "power" durability, the journal is only emptied after that.
    const synchronous = durability === 'power' ? 'FULL' : 'NORMAL';
    db.exec(`PRAGMA page_size = 4096; PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`);
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: DatabaseSync): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    const version = pragma(db, 'user_version');
    if (version > SCHEMA_VERSION) {
      throw new Error(`it was written by a newer paygate-mcp (schema ${version}; this one reads up to ${SCHEMA_VERSION})`);
    }
    db.exec(SCHEMA);
    if (version < 2) {
      buildAggregates(db);
      // Only the denial counts of reports read it, and they are kept in deny_totals now.
      db.exec('DROP INDEX IF EXISTS events_denied');
    }
    if (version !== SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    if (pragma(db, 'application_id') !== APPLICATION_ID) db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
    db.prepare('INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)').run(DATABASE_ID, randomUUID());
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/**
 * The SQLite store: WAL journal, `synchronous=NORMAL` (a committed transaction survives a killed
 * process), exclusive locking so that a second gate cannot open the same file and spend the same
 * credits twice.
 */
export class SqliteStore implements Store {
  readonly location: string;
  readonly #db: DatabaseSync;
  readonly #byHash: StatementSync;
  readonly #byId: StatementSync;
  readonly #retired: StatementSync;
  readonly #insertKey: StatementSync;
  readonly #writeKey: StatementSync;
  readonly #writeBalance: StatementSync;
  readonly #insertEvent: StatementSync;
  readonly #insertEvents: StatementSync;
  readonly #upsertToolStats: StatementSync;
  readonly #getMeta: StatementSync;
  readonly #setMeta: StatementSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;
  readonly #aggregates: Aggregates;
  readonly #lastEventIdAmongOldest: StatementSync;
  readonly #deleteEventsThrough: StatementSync;

  /**
   * Opens (creating) the database at `location` and brings its schema up to date. The caller has
   * checked with `identifyDatabase` that the file is PayGate's. If opening fails, the file is closed
   * again: nothing holds its lock.
   */
  constructor(location: string, durability: Durability = 'process') {
    this.location = location;
    this.#db = openDatabase(location, durability);
    this.#begin = this.#db.prepare('BEGIN IMMEDIATE');
    this.#commit = this.#db.prepare('COMMIT');
    this.#rollback = this.#db.prepare('ROLLBACK');
    this.#byHash = this.#db.prepare(`SELECT ${KEY_COLUMNS} FROM keys WHERE key_hash = ?`);
    this.#byId = this.#db.prepare(`SELECT ${KEY_COLUMNS} FROM keys WHERE id = ?`);
    this.#retired = this.#db.prepare('SELECT 1 FROM retired_hashes WHERE hash = ?');
    this.#insertKey = this.#db.prepare(
      `INSERT INTO keys (${KEY_FIELDS.join(', ')}) VALUES (${KEY_FIELDS.map((c) => `:${c}`).join(', ')})`,
    );
    this.#writeKey = this.#db.prepare(`UPDATE keys SET ${KEY_FIELDS.map((c) => `${c} = :${c}`).join(', ')} WHERE id = :id`);
    this.#writeBalance = this.#db.prepare(
      `UPDATE keys SET credits = ?, total_spent = ?, total_calls = ?, last_used_at = ?, usage_day = ?, usage_month = ?,
         daily_calls = ?, daily_credits = ?, monthly_calls = ?, monthly_credits = ?, inflight_credits = ?, inflight_calls = ?
       WHERE id = ?`,
    );
    this.#insertEvent = this.#prepareEventInsert(1);
    this.#insertEvents = this.#prepareEventInsert(EVENTS_PER_INSERT);
    this.#upsertToolStats = this.#db.prepare(
      `INSERT INTO tool_stats (tool, calls, credits, denied) VALUES (?, ?, ?, ?)
       ON CONFLICT (tool) DO UPDATE SET calls = excluded.calls, credits = excluded.credits, denied = excluded.denied`,
    );
    this.#getMeta = this.#db.prepare('SELECT value FROM meta WHERE name = ?');
    this.#setMeta = this.#db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
    this.#aggregates = new Aggregates(this.#db);
    this.#lastEventIdAmongOldest = this.#db.prepare('SELECT max(id) AS id FROM (SELECT id FROM events WHERE id < ? ORDER BY id LIMIT ?)');
    this.#deleteEventsThrough = this.#db.prepare('DELETE FROM events WHERE id <= ?');
  }

  #prepareEventInsert(rows: number): StatementSync {
    const values = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    return this.#db.prepare(`INSERT INTO events (${Object.keys(EVENT_COLUMNS).join(', ')}) VALUES ${values}`);
  }

  /** Inserts events many rows to a statement: a statement's own cost is paid once per group. */
  #insertAll(events: readonly UsageEvent[]): void {
    let next = 0;
    const params: SQLInputValue[] = [];
    for (; next + EVENTS_PER_INSERT <= events.length; next += EVENTS_PER_INSERT) {
      params.length = 0;
      for (let i = next; i < next + EVENTS_PER_INSERT; i++) pushEventParams(params, events[i]!);
      this.#insertEvents.run(...params);
    }
    for (; next < events.length; next++) this.#insertEvent.run(...pushEventParams([], events[next]!));
  }

  transaction<T>(work: () => T): T {
    if (this.#db.isTransaction) return work();
    this.#begin.run();
    try {
      const result = work();
      this.#commit.run();
      return result;
    } catch (error) {
      this.#rollback.run();
      throw error;
    }
  }

  findKeyByHash(hash: string): KeyRecord | undefined {
    const row = this.#byHash.get(hash) as KeyRow | undefined;
    return row && toKey(row);
  }

  findKeyById(id: number): KeyRecord | undefined {
    const row = this.#byId.get(id) as KeyRow | undefined;
    return row && toKey(row);
  }

  hashRetired(hash: string): boolean {
    return this.#retired.get(hash) !== undefined;
  }

  insertKey(record: Omit<KeyRecord, 'id'>): KeyRecord {
    const { lastInsertRowid } = this.#insertKey.run(keyParams(record));
    return { ...record, id: Number(lastInsertRowid) };
  }

  /** Stores a key under its own id (migration from another store); the id must be free. */
  restoreKey(record: KeyRecord): void {
    this.#db
      .prepare(`INSERT INTO keys (id, ${KEY_FIELDS.join(', ')}) VALUES (:id, ${KEY_FIELDS.map((c) => `:${c}`).join(', ')})`)
      .run({ ...keyParams(record), id: record.id });
  }

  writeKey(record: KeyRecord): void {
    this.#writeKey.run({ ...keyParams(record), id: record.id });
  }

  commit(batch: LedgerBatch): void {
    this.transaction(() => {
      for (const b of batch.balances) {
        const u = b.usage;
        this.#writeBalance.run(
          b.credits, b.totalSpent, b.totalCalls, b.lastUsedAt, u.day, u.month,
          u.dailyCalls, u.dailyCredits, u.monthlyCalls, u.monthlyCredits, b.inflightCredits, b.inflightCalls, b.id,
        );
      }
      this.#insertAll(batch.inserts);
      if (batch.toolStats) {
        for (const [tool, stats] of Object.entries(batch.toolStats.stats)) this.#upsertToolStats.run(tool, stats.calls, stats.credits, stats.denied);
        this.setMeta(TOOL_STATS_THROUGH, String(batch.toolStats.throughEventId));
      }
    });
  }

  listKeys(query: KeyQuery): KeyRecord[] {
    const { where, params } = keyFilter(query);
    const page = query.limit === undefined ? '' : ` LIMIT ${Math.trunc(query.limit)} OFFSET ${Math.trunc(query.offset ?? 0)}`;
    const rows = this.#db.prepare(`SELECT ${KEY_COLUMNS} FROM keys ${where} ORDER BY id${page}`).all(...params) as KeyRow[];
    return rows.map(toKey);
  }

  countKeys(query: KeyQuery): number {
    if (query.tags === undefined || Object.keys(query.tags).length === 0) return this.#aggregates.keyTotals(query.namespace).keys;
    // Tags are not counted ahead: a count by tag reads the namespace's keys (or all of them).
    const { where, params } = keyFilter(query);
    return num((this.#db.prepare(`SELECT count(*) AS n FROM keys ${where}`).get(...params) as Row).n!);
  }

  namespaces(): NamespaceSummary[] {
    return this.#aggregates.namespaces();
  }

  keyTotals(namespace?: string): KeyTotals {
    return this.#aggregates.keyTotals(namespace);
  }

  usage(query: UsageQuery): UsageEvent[] {
    const clauses: string[] = [];
    const params: SQLInputValue[] = [];
    const add = (clause: string, value: SQLInputValue) => {
      clauses.push(clause);
      params.push(value);
    };
    if (query.sinceMs !== undefined) add('id >= ?', this.firstEventIdAtOrAfter(query.sinceMs));
    if (query.keyId !== undefined) add('key_id = ?', query.keyId);
    if (query.namespace !== undefined) add('namespace = ?', query.namespace);
    if (query.afterId !== undefined) add('id > ?', query.afterId);
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    params.push(query.limit);
    const rows = this.#db.prepare(`SELECT * FROM events ${where} ORDER BY id LIMIT ?`).all(...params) as EventRow[];
    return rows.map(toEvent);
  }

  toolStats(): Map<string, ToolStats> {
    const stats = new Map<string, ToolStats>();
    const add = (rows: Row[]) => {
      for (const r of rows) {
        const tool = String(r.tool);
        const current = stats.get(tool) ?? { calls: 0, credits: 0, denied: 0 };
        stats.set(tool, { calls: current.calls + num(r.calls!), credits: current.credits + num(r.credits!), denied: current.denied + num(r.denied!) });
      }
    };
    add(this.#db.prepare('SELECT tool, calls, credits, denied FROM tool_stats').all() as Row[]);
    // Totals are written now and then; the events after the last write are counted here.
    add(
      this.#db
        .prepare(
          `SELECT tool, sum(status = 'charged') AS calls, sum(CASE WHEN status = 'charged' THEN credits ELSE 0 END) AS credits,
             sum(status = 'denied') AS denied FROM events WHERE id > ? AND status IN ('charged', 'denied') GROUP BY tool`,
        )
        .all(Number(this.getMeta(TOOL_STATS_THROUGH) ?? 0)) as Row[],
    );
    return stats;
  }

  /** The id of the first event at or after `ms`: event times never decrease, so a binary search over ids finds it. */
  firstEventIdAtOrAfter(ms: number): number {
    const firstFrom = this.#db.prepare('SELECT id, at FROM events WHERE id >= ? ORDER BY id LIMIT 1');
    let low = 0;
    let high = this.nextEventId();
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const row = firstFrom.get(middle) as Row | undefined;
      if (row === undefined || num(row.at!) >= ms) high = middle;
      else low = num(row.id!) + 1;
    }
    return low;
  }

  lastEventAt(): number {
    const row = this.#db.prepare('SELECT at FROM events ORDER BY id DESC LIMIT 1').get() as Row | undefined;
    return row === undefined ? 0 : num(row.at!);
  }

  denyReasons(namespace?: string): Map<string, number> {
    return this.#aggregates.denyReasons(namespace);
  }

  deleteOldestEvents(beforeId: number, limit: number): number {
    return this.transaction(() => {
      const through = (this.#lastEventIdAmongOldest.get(beforeId, limit) as Row).id!;
      if (through === null) return 0;
      const { changes } = this.#deleteEventsThrough.run(through);
      this.setMeta(EVENTS_DELETED_THROUGH, String(through));
      return Number(changes);
    });
  }

  get databaseId(): string {
    return this.getMeta(DATABASE_ID)!;
  }

  getMeta(name: string): string | undefined {
    const row = this.#getMeta.get(name) as Row | undefined;
    return row === undefined ? undefined : String(row.value);
  }

  setMeta(name: string, value: string): void {
    this.#setMeta.run(name, value);
  }

  nextEventId(): number {
    const stored = num((this.#db.prepare('SELECT coalesce(max(id), 0) AS id FROM events').get() as Row).id!);
    return Math.max(stored, Number(this.getMeta(EVENTS_DELETED_THROUGH) ?? 0)) + 1;
  }

  keysWithCallsInFlight(): Pick<BalanceRow, 'id' | 'inflightCredits' | 'inflightCalls'>[] {
    const rows = this.#db.prepare('SELECT id, inflight_credits, inflight_calls FROM keys WHERE inflight_calls > 0').all() as Row[];
    return rows.map((row) => ({ id: num(row.id!), inflightCredits: num(row.inflight_credits!), inflightCalls: num(row.inflight_calls!) }));
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
