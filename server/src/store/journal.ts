import fs from 'node:fs';
import type { LedgerBatch } from './types.ts';

export interface JournalEntry {
  seq: number;
  batch: LedgerBatch;
}

/**
 * The ledger's write-ahead journal: one line of JSON per event-loop turn, appended with a single
 * write before anyone is told the turn's changes are durable. A write that returned is in the
 * operating system's hands, so it survives the process being killed (as SQLite's WAL does with
 * `synchronous=NORMAL`). The ledger applies the lines to SQLite in larger transactions and then
 * empties the journal; at start-up, lines not yet applied are replayed.
 */
export class Journal {
  readonly file: string;
  #fd: number;

  private constructor(file: string, fd: number) {
    this.file = file;
    this.#fd = fd;
  }

  static open(file: string): Journal {
    return new Journal(file, fs.openSync(file, 'a+', 0o600));
  }

  append(entry: JournalEntry): void {
    const line = `${JSON.stringify(entry)}\n`;
    const written = fs.writeSync(this.#fd, line);
    // A short write (a full disk) leaves the rest to write from a buffer.
    if (written < Buffer.byteLength(line)) this.#writeRest(Buffer.from(line), written);
  }

  #writeRest(line: Buffer, written: number): void {
    while (written < line.length) written += fs.writeSync(this.#fd, line, written);
  }

  /**
   * The entries in order. A last line cut short (the process died while writing it) is not an
   * entry: nobody was told it was durable.
   */
  read(): JournalEntry[] {
    const entries: JournalEntry[] = [];
    for (const line of fs.readFileSync(this.file, 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        entries.push(JSON.parse(line) as JournalEntry);
      } catch {
        break;
      }
    }
    return entries;
  }

  /** Empties the journal once everything in it is in the store. */
  clear(): void {
    fs.ftruncateSync(this.#fd, 0);
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}
