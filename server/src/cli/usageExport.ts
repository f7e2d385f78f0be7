import fs from 'node:fs';
import { once } from 'node:events';
import { DEFAULTS } from '../config/types.ts';
import { UserFacingError } from '../errors.ts';
import { publicEvent, usageCsv } from '../http/admin/present.ts';
import { openStateFile } from '../store/open.ts';
import type { Store, UsageEvent } from '../store/types.ts';
import { JournaledWriter } from '../store/writer.ts';
import { parseFlags, UsageError } from './args.ts';

const USAGE = `Usage: paygate-mcp usage export [--state-file F] [--since T] [--until T] [--format csv|jsonl] [--out FILE]
  Writes the usage events from --since (included) to --until (excluded), oldest first.
  T: an ISO 8601 date or date and time (2026-11-01, 2026-11-01T00:00:00Z) or milliseconds since 1970.
  --state-file  the gate's state (default ${DEFAULTS.stateFile}); not while a gate is using it
  --format      csv (the columns of GET /usage?format=csv; the default) or jsonl (one JSON event a line)
  --out         the file to write (default: standard output)
`;

const EVENTS_PER_PAGE = 5000;

const OPTIONS = {
  'state-file': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A time given as ISO 8601 or as milliseconds since 1970. */
function timeOf(flag: string, raw: string): number {
  const ms = /^\d+$/.test(raw.trim()) ? Number(raw) : Date.parse(raw);
  if (!Number.isSafeInteger(ms)) throw new UsageError(`${flag} must be an ISO 8601 date or date and time (such as 2026-11-01T00:00:00Z) or milliseconds since 1970, not "${raw}"`);
  return ms;
}

/** Events from `fromId` (included) to `untilId` (excluded), a page at a time: the whole range is never in memory. */
async function* eventPages(store: Store, fromId: number, untilId: number): AsyncGenerator<UsageEvent[]> {
  let afterId = fromId - 1;
  while (afterId < untilId - 1) {
    const page = store.usage({ afterId, limit: EVENTS_PER_PAGE }).filter((event) => event.id < untilId);
    if (page.length === 0) return;
    yield page;
    afterId = page.at(-1)!.id;
  }
}

async function openOutput(file: string): Promise<fs.WriteStream> {
  const stream = fs.createWriteStream(file);
  try {
    await once(stream, 'open');
  } catch (error) {
    throw new UserFacingError(`cannot write ${file}: ${(error as Error).message}`);
  }
  return stream;
}

async function write(out: NodeJS.WritableStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/** `paygate-mcp usage export`: streams a time range of usage events as CSV or JSON lines. */
export async function runUsage(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, OPTIONS, true);
  const [action, ...rest] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (action !== 'export') throw new UsageError(`unknown usage command "${action}"; the usage command is: export`);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const format = values.format ?? 'csv';
  if (format !== 'csv' && format !== 'jsonl') throw new UsageError(`--format must be csv or jsonl, not "${format}"`);
  const since = values.since === undefined ? 0 : timeOf('--since', values.since);
  const until = values.until === undefined ? Number.MAX_SAFE_INTEGER : timeOf('--until', values.until);
  if (until <= since) throw new UsageError('--until must be later than --since');
  const file = values['state-file'] ?? DEFAULTS.stateFile;
  if (file !== ':memory:' && !fs.existsSync(file)) throw new UsageError(`there is no state file at ${file}; name the gate's state with --state-file`);

  const state = openStateFile(file);
  try {
    // What the gate journaled but had not applied yet belongs to the export too: apply it first.
    if (state.journal) new JournaledWriter(state.store, state.journal, state.recovered).close();
    const out = values.out === undefined ? process.stdout : await openOutput(values.out);
    let count = 0;
    if (format === 'csv') await write(out, usageCsv([], true));
    const fromId = state.store.firstEventIdAtOrAfter(since);
    const untilId = state.store.firstEventIdAtOrAfter(until);
    for await (const page of eventPages(state.store, fromId, untilId)) {
      await write(out, format === 'csv' ? usageCsv(page, false) : page.map((event) => `${JSON.stringify(publicEvent(event))}\n`).join(''));
      count += page.length;
    }
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
    }
    process.stderr.write(`exported ${count} usage event(s)${values.out === undefined ? '' : ` to ${values.out}`}\n`);
  } finally {
    state.store.close();
  }
  return 0;
}
