import fs from 'node:fs';
import path from 'node:path';
import { UserFacingError } from '../errors.ts';
import { Journal } from './journal.ts';
import { Ledger } from './ledger.ts';
import { SqliteStore } from './sqlite.ts';
import { JournaledWriter } from './writer.ts';

const SQLITE_HEADER = Buffer.from('SQLite format 3\u0000', 'latin1');

/** A state file that cannot be used. The message names the file and says what to do; the file is untouched. */
export class StateFileError extends UserFacingError {}

export interface OpenedState {
  store: SqliteStore;
  /** The ledger's journal beside a state file (`<file>.journal`); none for `:memory:`. */
  journal?: Journal;
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

function openSqlite(file: string): OpenedState {
  let store: SqliteStore;
  try {
    store = new SqliteStore(file);
  } catch (error) {
    const message = (error as Error).message;
    if (/locked|busy/i.test(message)) {
      throw new StateFileError(`the state file ${file} is in use by another process (another paygate-mcp?); stop it or use another --state-file`);
    }
    throw new StateFileError(`the state file ${file} cannot be used: ${message}. It was not changed; restore it from a backup or pass another --state-file`);
  }
  try {
    return { store, journal: Journal.open(`${file}.journal`) };
  } catch (error) {
    store.close();
    throw new StateFileError(`cannot open the ledger journal ${file}.journal: ${(error as Error).message}`);
  }
}

/**
 * Opens the SQLite state at `file`, creating it (mode 0600) when missing, and its ledger journal. A
 * paygate-mcp 2.x JSON state file is never written to: its keys go into `<file>.sqlite` beside it, once.
 */
export function openStateFile(file: string): OpenedState {
  if (file === ':memory:') return { store: new SqliteStore(':memory:') };
  const absolute = path.resolve(file);
  switch (kindOf(absolute)) {
    case 'missing':
      createPrivateFile(absolute);
      return openSqlite(absolute);
    case 'empty':
    case 'sqlite':
      return openSqlite(absolute);
    case 'json': {
      const beside = `${absolute}.sqlite`;
      const besideKind = kindOf(beside);
      if (besideKind === 'missing') createPrivateFile(beside);
      if (besideKind === 'missing' || besideKind === 'sqlite' || besideKind === 'empty') {
        const state = openSqlite(beside);
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

/** The ledger over an opened state: journaled for a file, direct for `:memory:`. Replays the journal first. */
export function openLedger(state: OpenedState): Ledger {
  return new Ledger(state.store, state.journal && new JournaledWriter(state.store, state.journal));
}
