import fs from 'node:fs';
import path from 'node:path';
import { UserFacingError } from '../errors.ts';
import { Journal, JournalDamagedError, readJournal, type JournalEntry } from './journal.ts';
import { InProcessLedger } from './ledger.ts';
import { DATABASE_ID, identifyDatabase, SqliteStore } from './sqlite.ts';
import type { Durability } from './types.ts';
import { APPLIED_THROUGH, JournaledWriter } from './writer.ts';

const SQLITE_HEADER = Buffer.from('SQLite format 3\u0000', 'latin1');

/** A state file that cannot be used. The message names the file and says what to do; the file is untouched. */
export class StateFileError extends UserFacingError {}

export interface OpenedState {
  store: SqliteStore;
  /** The ledger's journal beside a state file (`<file>.journal`); none for `:memory:`. */
  journal?: Journal;
  /** What the journal held when it was opened: `openLedger` replays it. */
  recovered: JournalEntry[];
  /**
   * Set when `--state-file` named a paygate-mcp 2.x JSON file whose keys are not imported yet. The
   * caller imports them and then calls `markLegacyImported` in the same transaction.
   */
  legacyJsonFile?: string;
}

const LEGACY_IMPORT_MARK = 'imported-legacy-state';

export function markLegacyImported(state: OpenedState): void {
  if (state.legacyJsonFile) state.store.setMeta(LEGACY_IMPORT_MARK, state.legacyJsonFile);
}

type FileKind = 'missing' | 'empty' | 'sqlite' | 'json' | 'other';

function kindOf(file: string): FileKind {
  let handle: number;
  try {
    handle = fs.openSync(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    throw new StateFileError(`cannot read the state file ${file}: ${(error as Error).message}`);
  }
  try {
    if (fs.fstatSync(handle).isDirectory()) throw new StateFileError(`the state file ${file} is a directory; give a file path`);
    const head = Buffer.alloc(SQLITE_HEADER.length);
    const read = fs.readSync(handle, head, 0, head.length, 0);
    if (read === 0) return 'empty';
    if (read === head.length && head.equals(SQLITE_HEADER)) return 'sqlite';
    return /^\s*\[/.test(head.subarray(0, read).toString('latin1')) ? 'json' : 'other';
  } catch (error) {
    if (error instanceof StateFileError) throw error;
    throw new StateFileError(`cannot read the state file ${file}: ${(error as Error).message}`);
  } finally {
    fs.closeSync(handle);
  }
}

function createPrivateFile(file: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, '', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    throw new StateFileError(`cannot create the state file ${file}: ${(error as Error).message}`);
  }
}

/** What SQLite says when another connection holds the file's lock. */
function inUse(file: string, error: unknown): StateFileError | undefined {
  if (!/locked|busy/i.test((error as Error).message)) return undefined;
  return new StateFileError(`the state file ${file} is in use by another process (another paygate-mcp?); stop it or use another --state-file`);
}

function unusable(file: string, error: unknown): StateFileError {
  if (error instanceof StateFileError) return error;
  return (
    inUse(file, error) ??
    new StateFileError(`the state file ${file} cannot be used: ${(error as Error).message}. It was not changed; restore it from a backup or pass another --state-file`)
  );
}

/** The meta entries stored in `file`, after making sure, without writing to it, that it is a PayGate database. */
function checkDatabase(file: string): ReadonlyMap<string, string> {
  let identity: ReturnType<typeof identifyDatabase>;
  try {
    identity = identifyDatabase(file);
  } catch (error) {
    throw unusable(file, error);
  }
  if (identity.owner === 'paygate') return identity.meta;
  const tables = identity.tables.slice(0, 5).join(', ');
  throw new StateFileError(
    `the state file ${file} is another program's SQLite database (application id ${identity.applicationId}, tables ${tables}), not a PayGate state database. It was not changed; pass another --state-file`,
  );
}

/**
 * The entries of the journal beside `file`, if they can be replayed into that database (`meta` is
 * its meta table): it is the database the journal names, and no line between what the database
 * has applied and the journal's first line is missing. Changes nothing.
 */
function recoverJournal(journalFile: string, file: string, meta: ReadonlyMap<string, string>): JournalEntry[] {
  let contents: ReturnType<typeof readJournal>;
  try {
    contents = readJournal(journalFile);
  } catch (error) {
    if (!(error instanceof JournalDamagedError)) throw new StateFileError(`cannot read the ledger journal ${journalFile}: ${(error as Error).message}`);
    throw new StateFileError(
      `${error.message}: the lines after it hold charges callers were told about, so the gate does not start without them. Nothing was changed. ` +
        `Repair that line, or restore ${journalFile} from a backup; to start anyway, losing every line from that byte on, cut the file there (truncate -s ${error.offset} ${journalFile})`,
    );
  }
  const { entries } = contents;
  // A journal with nothing to replay may be replaced, whoever it belonged to.
  if (entries.length === 0) return entries;
  const databaseId = meta.get(DATABASE_ID);
  const appliedThrough = Number(meta.get(APPLIED_THROUGH) ?? 0);
  const remedy =
    `Nothing was changed. Put back the state file that journal belongs to; or, to keep ${file} as it is, ` +
    `move ${journalFile} away (its ${entries.length} line(s) are then not applied)`;
  // A journal without an id predates ids: only the sequence check applies to it.
  if (contents.databaseId !== undefined && contents.databaseId !== databaseId) {
    throw new StateFileError(
      `the ledger journal ${journalFile} belongs to another database (id ${contents.databaseId}) than the state file ${file} (id ${databaseId ?? 'none'}): ` +
        `one of them was copied or restored from a backup. ${remedy}`,
    );
  }
  if (entries[0]!.seq > appliedThrough + 1) {
    throw new StateFileError(
      `the state file ${file} is older than its ledger journal ${journalFile}: it has applied lines up to ${appliedThrough}, the journal starts at line ${entries[0]!.seq} ` +
        `(the state file was restored from a backup?). ${remedy}`,
    );
  }
  return entries;
}

/**
 * Opens `file` (creating it when `kind` is 'missing') and its journal, after checking without
 * writing that the file is a PayGate database and the journal belongs to it. If a step fails,
 * everything opened so far is closed again.
 */
function openSqlite(file: string, kind: 'missing' | 'empty' | 'sqlite', durability: Durability): OpenedState {
  const journalFile = `${file}.journal`;
  const recovered = recoverJournal(journalFile, file, kind === 'sqlite' ? checkDatabase(file) : new Map());
  if (kind === 'missing') createPrivateFile(file);
  let journal: Journal;
  try {
    journal = Journal.open(journalFile, { syncEachLine: durability === 'power' });
  } catch (error) {
    throw new StateFileError(`cannot open the ledger journal ${journalFile}: ${(error as Error).message}`);
  }
  try {
    return { store: new SqliteStore(file, durability), journal, recovered };
  } catch (error) {
    journal.close();
    throw unusable(file, error);
  }
}

/**
 * Opens the SQLite state at `file`, creating it (mode 0600) when missing, and its ledger journal. A
 * paygate-mcp 2.x JSON state file is never written to: its keys go into `<file>.sqlite` beside it, once.
 */
export function openStateFile(file: string, durability: Durability = 'process'): OpenedState {
  if (file === ':memory:') return { store: new SqliteStore(':memory:'), recovered: [] };
  const absolute = path.resolve(file);
  const kind = kindOf(absolute);
  switch (kind) {
    case 'missing':
    case 'empty':
    case 'sqlite':
      return openSqlite(absolute, kind, durability);
    case 'json': {
      const beside = `${absolute}.sqlite`;
      const besideKind = kindOf(beside);
      if (besideKind === 'missing' || besideKind === 'sqlite' || besideKind === 'empty') {
        const state = openSqlite(beside, besideKind, durability);
        return state.store.getMeta(LEGACY_IMPORT_MARK) === undefined ? { ...state, legacyJsonFile: absolute } : state;
      }
      throw new StateFileError(`${beside} (the SQLite state for the paygate-mcp 2.x file ${absolute}) is not a PayGate state database; move it away`);
    }
    case 'other':
      throw new StateFileError(
        `the state file ${absolute} is not a PayGate state database (no SQLite header) nor a paygate-mcp 2.x JSON state file. It was not changed; move it away or pass another --state-file`,
      );
  }
}

/**
 * The ledger over an opened state: journaled for a file, direct for `:memory:`. Replays the journal
 * first; if that fails, the state is closed.
 */
export function openLedger(state: OpenedState): InProcessLedger {
  try {
    return new InProcessLedger(state.store, state.journal && new JournaledWriter(state.store, state.journal, state.recovered));
  } catch (error) {
    state.journal?.close();
    state.store.close();
    throw error;
  }
}
