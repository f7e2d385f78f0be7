import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import type { KeyTotals, NamespaceSummary } from './types.ts';

/**
 * Totals kept as rows change, so that reports read a few small rows instead of scanning keys or
 * events: per namespace the keys, active keys, credits, spent and calls (from `keys`), and per
 * namespace and reason the denied calls (from `events`). Triggers keep them in the transaction of
 * every write. Deleting events (usage retention) leaves them as they are: they count what happened.
 */
export const AGGREGATES_SCHEMA = `
CREATE TABLE IF NOT EXISTS namespace_totals (
  namespace TEXT PRIMARY KEY,
  keys INTEGER NOT NULL DEFAULT 0,
  active_keys INTEGER NOT NULL DEFAULT 0,
  credits INTEGER NOT NULL DEFAULT 0,
  spent INTEGER NOT NULL DEFAULT 0,
  calls INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deny_totals (
  namespace TEXT NOT NULL,
  reason TEXT NOT NULL,
  denied INTEGER NOT NULL,
  PRIMARY KEY (namespace, reason)
);
CREATE TRIGGER IF NOT EXISTS namespace_totals_on_key_insert AFTER INSERT ON keys BEGIN
  INSERT INTO namespace_totals (namespace, keys, active_keys, credits, spent, calls)
    VALUES (NEW.namespace, 1, NEW.active, NEW.credits, NEW.total_spent, NEW.total_calls)
  ON CONFLICT (namespace) DO UPDATE SET keys = keys + 1, active_keys = active_keys + excluded.active_keys,
    credits = credits + excluded.credits, spent = spent + excluded.spent, calls = calls + excluded.calls;
END;
CREATE TRIGGER IF NOT EXISTS namespace_totals_on_key_delete AFTER DELETE ON keys BEGIN
  UPDATE namespace_totals SET keys = keys - 1, active_keys = active_keys - OLD.active, credits = credits - OLD.credits,
    spent = spent - OLD.total_spent, calls = calls - OLD.total_calls
  WHERE namespace = OLD.namespace;
END;
CREATE TRIGGER IF NOT EXISTS namespace_totals_on_key_update
AFTER UPDATE OF namespace, active, credits, total_spent, total_calls ON keys WHEN OLD.namespace = NEW.namespace BEGIN
  UPDATE namespace_totals SET active_keys = active_keys + NEW.active - OLD.active, credits = credits + NEW.credits - OLD.credits,
    spent = spent + NEW.total_spent - OLD.total_spent, calls = calls + NEW.total_calls - OLD.total_calls
  WHERE namespace = NEW.namespace;
END;
CREATE TRIGGER IF NOT EXISTS namespace_totals_on_key_move
AFTER UPDATE OF namespace ON keys WHEN OLD.namespace <> NEW.namespace BEGIN
  UPDATE namespace_totals SET keys = keys - 1, active_keys = active_keys - OLD.active, credits = credits - OLD.credits,
    spent = spent - OLD.total_spent, calls = calls - OLD.total_calls
  WHERE namespace = OLD.namespace;
  INSERT INTO namespace_totals (namespace, keys, active_keys, credits, spent, calls)
    VALUES (NEW.namespace, 1, NEW.active, NEW.credits, NEW.total_spent, NEW.total_calls)
  ON CONFLICT (namespace) DO UPDATE SET keys = keys + 1, active_keys = active_keys + excluded.active_keys,
    credits = credits + excluded.credits, spent = spent + excluded.spent, calls = calls + excluded.calls;
END;
CREATE TRIGGER IF NOT EXISTS deny_totals_on_event AFTER INSERT ON events WHEN NEW.status = 'denied' BEGIN
  INSERT INTO deny_totals (namespace, reason, denied) VALUES (NEW.namespace, coalesce(NEW.reason, ''), 1)
  ON CONFLICT (namespace, reason) DO UPDATE SET denied = denied + 1;
END;
`;

/** Fills the totals from the rows stored so far: once, when a state file gets them (schema 2). */
export function buildAggregates(db: DatabaseSync): void {
  db.exec(`
    DELETE FROM namespace_totals;
    DELETE FROM deny_totals;
    INSERT INTO namespace_totals (namespace, keys, active_keys, credits, spent, calls)
      SELECT namespace, count(*), sum(active), sum(credits), sum(total_spent), sum(total_calls) FROM keys GROUP BY namespace;
    INSERT INTO deny_totals (namespace, reason, denied)
      SELECT namespace, coalesce(reason, ''), count(*) FROM events WHERE status = 'denied' GROUP BY namespace, coalesce(reason, '');
  `);
}

type Row = Record<string, SQLInputValue>;

const num = (value: SQLInputValue | undefined): number => Number(value ?? 0);

/** Reads of the kept totals: each costs a few rows, however many keys and events are stored. */
export class Aggregates {
  readonly #namespaces: StatementSync;
  readonly #allTotals: StatementSync;
  readonly #namespaceTotals: StatementSync;
  readonly #allDenied: StatementSync;
  readonly #namespaceDenied: StatementSync;

  constructor(db: DatabaseSync) {
    this.#namespaces = db.prepare('SELECT namespace, keys, active_keys, credits, spent FROM namespace_totals WHERE keys > 0 ORDER BY namespace');
    this.#allTotals = db.prepare('SELECT sum(keys) AS keys, sum(active_keys) AS active_keys, sum(credits) AS credits, sum(spent) AS spent, sum(calls) AS calls FROM namespace_totals');
    this.#namespaceTotals = db.prepare('SELECT keys, active_keys, credits, spent, calls FROM namespace_totals WHERE namespace = ?');
    this.#allDenied = db.prepare('SELECT reason, sum(denied) AS denied FROM deny_totals GROUP BY reason');
    this.#namespaceDenied = db.prepare('SELECT reason, denied FROM deny_totals WHERE namespace = ?');
  }

  namespaces(): NamespaceSummary[] {
    return (this.#namespaces.all() as Row[]).map((row) => ({
      namespace: String(row.namespace),
      keyCount: num(row.keys),
      activeKeys: num(row.active_keys),
      totalCredits: num(row.credits),
      totalSpent: num(row.spent),
    }));
  }

  keyTotals(namespace?: string): KeyTotals {
    const row = (namespace === undefined ? this.#allTotals.get() : this.#namespaceTotals.get(namespace)) as Row | undefined;
    return {
      keys: num(row?.keys),
      activeKeys: num(row?.active_keys),
      totalCredits: num(row?.credits),
      totalSpent: num(row?.spent),
      totalCalls: num(row?.calls),
    };
  }

  denyReasons(namespace?: string): Map<string, number> {
    const rows = (namespace === undefined ? this.#allDenied.all() : this.#namespaceDenied.all(namespace)) as Row[];
    return new Map(rows.filter((row) => num(row.denied) > 0).map((row) => [String(row.reason), num(row.denied)]));
  }
}
