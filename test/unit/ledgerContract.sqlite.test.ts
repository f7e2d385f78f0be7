import path from 'node:path';
import { openLedger, openStateFile, type OpenedState } from '../../server/src/store/open.ts';
import { SqliteLedger } from '../../server/src/store/sqliteLedger.ts';
import { describeLedgerContract, type OpenedLedger } from '../contract/ledger.contract.ts';
import { tempDir } from '../helpers/tmp.ts';

interface OpenedSqlite extends OpenedLedger {
  state: OpenedState;
}

function opened(state: OpenedState): OpenedSqlite {
  const ledger = new SqliteLedger(openLedger(state));
  return { ledger, state, close: () => ledger.close() };
}

describeLedgerContract('SQLite in memory', async () => opened(openStateFile(':memory:')));

const dir = tempDir();
let files = 0;

describeLedgerContract('SQLite state file', async () => opened(openStateFile(path.join(dir, `state-${files++}.db`), 'process')), {
  // The process dies: its files close with nothing more written; the next start opens them again.
  crashAndReopen: async ({ state }) => {
    state.journal?.close();
    state.store.close();
    return opened(openStateFile(state.store.location, 'process'));
  },
});
