import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { InProcessLedger, LocalReservation } from '../../server/src/store/ledger.ts';
import { openLedger, openStateFile, type OpenedState } from '../../server/src/store/open.ts';
import { keyRecord, NOW } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const KEYS = 2;
const INITIAL = 20;

/**
 * What happens to the gate: calls reserved and settled (kept or refunded), admin top-ups, the
 * journal applied, clean restarts, and crashes. A crash may land in the middle of a write: one
 * more reservation or settlement is written (never acknowledged) and the journal is cut at `cut`
 * (0 to 1) of that write.
 */
type Step =
  | { kind: 'reserve'; key: number; credits: number }
  | { kind: 'settle'; pick: number; keep: boolean }
  | { kind: 'topUp'; key: number; credits: number }
  | { kind: 'apply' }
  | { kind: 'restart' }
  | { kind: 'crash'; during: null | { write: 'reserve' | 'settle'; key: number; pick: number; keep: boolean; cut: number } };

const key = fc.integer({ min: 0, max: KEYS - 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('reserve' as const), key, credits: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), keep: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('topUp' as const), key, credits: fc.integer({ min: 1, max: 10 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('apply' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      during: fc.option(
        fc.record({ write: fc.constantFrom('reserve' as const, 'settle' as const), key, pick: fc.nat(), keep: fc.boolean(), cut: fc.double({ min: 0, max: 1, noNaN: true }) }),
      ),
    }),
  },
);

const hashOf = (index: number) => `key-${index}`;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** The gate under test and what its callers were told. */
class Run {
  readonly file: string;
  state!: OpenedState;
  ledger!: InProcessLedger;
  inFlight: LocalReservation[] = [];
  topUps = Array<number>(KEYS).fill(0);
  /** Tools (one per call) whose kept charge was acknowledged: they must be charged after any crash. */
  readonly answered = new Set<string>();
  /** Tools whose kept charge was being written when the gate crashed: charged or not, either is right. */
  readonly unanswered = new Set<string>();
  #calls = 0;

  constructor(file: string) {
    this.file = file;
    this.#open();
    for (let index = 0; index < KEYS; index++) {
      const { id: _id, ...fields } = keyRecord({ keyHash: hashOf(index), credits: INITIAL });
      this.ledger.insert(fields);
    }
  }

  #open(): void {
    this.state = openStateFile(this.file);
    this.ledger = openLedger(this.state);
    this.ledger.recoverInterrupted(NOW);
    this.inFlight = [];
  }

  /** Starts a call on `keyIndex` if it has the credits; undefined if not. */
  reserve(keyIndex: number, credits: number): LocalReservation | undefined {
    const record = this.ledger.findByHash(hashOf(keyIndex))!;
    if (record.credits < credits) return undefined;
    return this.ledger.reserve(record, [{ tool: `call-${this.#calls++}`, credits }], NOW);
  }

  /** Takes a call in flight out of the list to settle it. */
  take(pick: number): LocalReservation | undefined {
    return this.inFlight.length === 0 ? undefined : this.inFlight.splice(pick % this.inFlight.length, 1)[0];
  }

  settle(reservation: LocalReservation, keep: boolean): Promise<void> {
    return this.ledger.settle(reservation, reservation.charges[0]!, keep ? null : 'failed', NOW);
  }

  /** The process dies: its files close with nothing more written; the journal is cut at `cutAt` bytes if given. */
  crashAndRestart(cutAt?: number): void {
    this.state.journal!.close();
    this.state.store.close();
    if (cutAt !== undefined) fs.truncateSync(`${this.file}.journal`, cutAt);
    this.#open();
  }

  restart(): void {
    this.ledger.close();
    this.#open();
  }

  journalSize(): number {
    return fs.statSync(`${this.file}.journal`).size;
  }

  /** After a restart (nothing in flight): every key's books balance and every acknowledged charge is there. */
  check(): void {
    const charged = new Set<string>();
    for (let index = 0; index < KEYS; index++) {
      const stored = this.ledger.store.findKeyByHash(hashOf(index))!;
      assert.equal(stored.credits + stored.totalSpent, INITIAL + this.topUps[index]!, `key ${index}: credits + spent = initial + top-ups`);
      const events = this.ledger.store.usage({ keyId: stored.id, limit: 10_000 }).filter((event) => event.status === 'charged');
      assert.equal(events.reduce((sum, event) => sum + event.credits, 0), stored.totalSpent, `key ${index}: every credit spent has its event`);
      for (const event of events) charged.add(event.tool);
    }
    for (const tool of this.answered) assert.ok(charged.has(tool), `the acknowledged charge of ${tool} was lost`);
    for (const tool of charged) assert.ok(this.answered.has(tool) || this.unanswered.has(tool), `${tool} was charged but never kept`);
  }

  async do(action: Step): Promise<void> {
    switch (action.kind) {
      case 'reserve': {
        const reservation = this.reserve(action.key, action.credits);
        if (!reservation) return;
        await reservation.durable;
        this.inFlight.push(reservation);
        return;
      }
      case 'settle': {
        const reservation = this.take(action.pick);
        if (!reservation) return;
        await this.settle(reservation, action.keep);
        if (action.keep) this.answered.add(reservation.charges[0]!.tool);
        return;
      }
      case 'topUp':
        this.ledger.update(this.ledger.findByHash(hashOf(action.key))!, (draft) => {
          draft.credits += action.credits;
        });
        this.topUps[action.key]! += action.credits;
        return;
      case 'apply':
        this.ledger.flush();
        return;
      case 'restart':
        this.restart();
        this.check();
        return;
      case 'crash':
        await this.crash(action.during);
        this.check();
    }
  }

  async crash(during: Extract<Step, { kind: 'crash' }>['during']): Promise<void> {
    if (during === null) return this.crashAndRestart();
    const before = this.journalSize();
    let written: Promise<void> | undefined;
    if (during.write === 'reserve') {
      written = this.reserve(during.key, 1)?.durable;
    } else {
      const reservation = this.take(during.pick);
      if (reservation) {
        written = this.settle(reservation, during.keep);
        if (during.keep) this.unanswered.add(reservation.charges[0]!.tool);
      }
    }
    // The write happens now or at the end of this turn; its caller is never told (the gate dies first).
    written?.catch(() => {});
    await nextTurn();
    const after = this.journalSize();
    this.crashAndRestart(before + Math.floor(during.cut * (after - before)));
  }
}

test('over any sequence of calls, top-ups, crashes (also mid-write) and restarts, the books balance and no acknowledged charge is lost', async () => {
  const dir = tempDir();
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
      const run = new Run(path.join(dir, `state-${runs++}.db`));
      try {
        for (const action of steps) await run.do(action);
        run.crashAndRestart();
        run.check();
      } finally {
        run.ledger.close();
      }
    }),
    { numRuns: 100 },
  );
});
