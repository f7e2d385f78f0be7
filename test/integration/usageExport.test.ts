import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { openLedger, openStateFile } from '../../server/src/store/open.ts';
import { GateProcess, runCli } from '../helpers/gate.ts';
import { keyRecord } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const START = Date.parse('2026-03-01T00:00:00Z');
const HOUR_MS = 3_600_000;

/** A state file with one event an hour for 48 hours, alternately charged and denied; the last 3 stay in the journal. */
async function stateWithEvents(): Promise<string> {
  const file = path.join(tempDir(), 'state.db');
  const ledger = openLedger(openStateFile(file));
  const { id: _id, ...fields } = keyRecord({ credits: 1000, keyHash: 'k', keyPrefix: 'pg_export', name: 'exporter, "inc"' });
  const record = ledger.insert(fields);
  for (let hour = 0; hour < 48; hour++) {
    const at = START + hour * HOUR_MS;
    if (hour % 2 === 1) ledger.recordRefusal(record, '=cmd', 'rate_limited', 'denied', at);
    else {
      const reservation = ledger.reserve(record, [{ tool: 'search', credits: 2 }], at);
      await reservation.durable;
      await ledger.settle(reservation, reservation.charges[0]!, null, at);
    }
    if (hour === 44) ledger.flush();
  }
  await new Promise((resolve) => setImmediate(resolve));
  // Stop as a killed gate would: what was journaled since the last flush is not in SQLite yet.
  ledger.store.close();
  return file;
}

const file = await stateWithEvents();

test('usage export writes the events of a time range as CSV, oldest first, with the columns of GET /usage', async () => {
  const out = path.join(tempDir(), 'usage.csv');
  const result = await runCli(['usage', 'export', '--state-file', file, '--since', '2026-03-02T00:00:00Z', '--until', '2026-03-02T06:00:00Z', '--format', 'csv', '--out', out]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /exported 6 usage event\(s\) to /);
  const lines = fs.readFileSync(out, 'utf8').split('\r\n');
  assert.equal(lines[0], 'id,timestamp,apiKey,keyName,namespace,tool,creditsCharged,allowed,status,denyReason');
  assert.equal(lines.length, 8);
  assert.equal(lines[1], `25,2026-03-02T00:00:00.000Z,pg_export...,"exporter, ""inc""",default,search,2,true,charged,`);
  assert.equal(lines[2], `26,2026-03-02T01:00:00.000Z,pg_export...,"exporter, ""inc""",default,'=cmd,0,false,denied,rate_limited`);
  assert.match(lines[6]!, /^30,2026-03-02T05:00:00\.000Z,/);
  assert.equal(lines[7], '');
});

test('usage export streams JSON lines to standard output, times given in milliseconds, journaled events included', async () => {
  const result = await runCli(['usage', 'export', '--state-file', file, '--since', String(START + 40 * HOUR_MS), '--format', 'jsonl']);
  assert.equal(result.code, 0, result.stderr);
  const events = result.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(events.map((event) => event.id), [41, 42, 43, 44, 45, 46, 47, 48]);
  assert.deepEqual(events[7], {
    id: 48,
    timestamp: '2026-03-02T23:00:00.000Z',
    apiKey: 'pg_export...',
    keyName: 'exporter, "inc"',
    namespace: 'default',
    tool: '=cmd',
    creditsCharged: 0,
    allowed: false,
    status: 'denied',
    denyReason: 'rate_limited',
  });
});

test('bad arguments to usage export get one line naming what to fix, and exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['--format', 'xml'], /^paygate-mcp: --format must be csv or jsonl, not "xml"\n$/],
    [['--since', 'yesterday'], /^paygate-mcp: --since must be an ISO 8601 date or date and time .* not "yesterday"\n$/],
    [['--since', '2026-03-02', '--until', '2026-03-01'], /^paygate-mcp: --until must be later than --since\n$/],
    [['--limit', '5'], /^paygate-mcp: unknown flag --limit\n$/],
    [['--state-file', path.join(tempDir(), 'missing.db')], /^paygate-mcp: there is no state file at .*missing\.db; name the gate's state with --state-file\n$/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(['usage', 'export', '--state-file', file, ...args]);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.stderr, message);
    assert.equal(result.stdout, '');
  }
  const unknown = await runCli(['usage', 'import']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^paygate-mcp: unknown usage command "import"; the usage command is: export\n$/);
});

test('usage export of a state file a gate is using is refused, naming the file, and changes nothing', async () => {
  const ledger = openLedger(openStateFile(file));
  try {
    ledger.flush();
    const result = await runCli(['usage', 'export', '--state-file', file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^paygate-mcp: the state file .*state\.db is in use by another process \(another paygate-mcp\?\)/);
  } finally {
    ledger.close();
  }
});

test('usageRetentionDays comes from the config or --usage-retention-days, shows in /status, and a bad value is one line and exit 2', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  fs.writeFileSync(config, JSON.stringify({ usageRetentionDays: 400 }));
  const valid = await runCli(['validate', '--config', config]);
  assert.equal(valid.code, 0, valid.stdout + valid.stderr);
  fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ usageRetentionDays: -1 }));
  const invalid = await runCli(['validate', '--config', path.join(dir, 'bad.json')]);
  assert.equal(invalid.code, 1);
  assert.match(invalid.stdout, /usageRetentionDays/);

  const flag = await runCli(['wrap', '--server', 'true', '--usage-retention-days', 'forever']);
  assert.equal(flag.code, 2);
  assert.equal(flag.stderr, 'paygate-mcp: --usage-retention-days must be a whole number from 0 to 36500, not "forever"\n');

  const gate = await GateProcess.start(['--config', config, '--usage-retention-days', '30', '--state-file', path.join(dir, 'state.db')]);
  assert.equal((await gate.admin('GET', '/status')).json.config.usageRetentionDays, 30);
});
