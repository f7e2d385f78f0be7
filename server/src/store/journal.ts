import fs from 'node:fs';
import type { LedgerBatch } from './types.ts';

export interface JournalEntry {
  seq: number;
  batch: LedgerBatch;
}

/** What a journal holds: the id of the database it belongs to (none in a journal from before ids), and its entries. */
export interface JournalContents {
  databaseId: string | undefined;
  entries: JournalEntry[];
}

/** A line that does not parse with lines after it that do: those were acknowledged, so nothing may be replayed without them. */
export class JournalDamagedError extends Error {
  readonly file: string;
  /** Where the damaged line starts, in bytes from the start of the file. */
  readonly offset: number;

  constructor(file: string, offset: number) {
    super(`the ledger journal ${file} has a damaged line at byte ${offset}, followed by lines that are intact`);
    this.file = file;
    this.offset = offset;
  }
}

/** The file calls a journal makes: `fs`'s, or ones that fail on purpose (a full disk) in a test. */
export interface JournalIo {
  write(fd: number, bytes: Buffer, offset: number): number;
  truncate(fd: number, length: number): void;
  /** Makes written bytes survive a power loss. */
  sync(fd: number): void;
}

const FILE_IO: JournalIo = {
  write: (fd, bytes, offset) => fs.writeSync(fd, bytes, offset),
  truncate: (fd, length) => fs.ftruncateSync(fd, length),
  sync: (fd) => fs.fdatasyncSync(fd),
};

export interface JournalOptions {
  /** Sync every line before `append` returns (`durability: "power"`); otherwise a line survives a killed process only. */
  syncEachLine: boolean;
  io?: JournalIo;
}

interface Header {
  paygateJournal: 1;
  database: string;
}

const NEWLINE = 0x0a;

function parseLine(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isEntry(value: unknown): value is JournalEntry {
  const entry = value as Partial<JournalEntry> | null;
  return typeof entry === 'object' && entry !== null && Number.isSafeInteger(entry.seq) && typeof entry.batch === 'object' && entry.batch !== null;
}

function isHeader(value: unknown): value is Header {
  const header = value as Partial<Header> | null;
  return typeof header === 'object' && header !== null && header.paygateJournal === 1 && typeof header.database === 'string';
}

/**
 * The header and the entries of the journal `file`, in order (none if there is no such file).
 * Damaged lines at the end (the process died while writing them) are not entries: nobody was told
 * they were durable. A damaged line before intact ones is a `JournalDamagedError`.
 */
export function readJournal(file: string): JournalContents {
  const contents: JournalContents = { databaseId: undefined, entries: [] };
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return contents;
    throw error;
  }
  let damagedAt: number | undefined;
  for (let start = 0; start < bytes.length; ) {
    const end = bytes.indexOf(NEWLINE, start);
    // A last line without its newline was never acknowledged, even if it parses.
    if (end === -1) break;
    const line = bytes.toString('utf8', start, end);
    if (line.trim() !== '') {
      const value = parseLine(line);
      if (start === 0 && isHeader(value)) contents.databaseId = value.database;
      else if (!isEntry(value)) damagedAt ??= start;
      else if (damagedAt !== undefined) throw new JournalDamagedError(file, damagedAt);
      else contents.entries.push(value);
    }
    start = end + 1;
  }
  return contents;
}

/**
 * The ledger's write-ahead journal: a header line naming the database it belongs to, then one line
 * of JSON per event-loop turn, appended before anyone is told the turn's changes are durable. A
 * write that returned is in the operating system's hands, so it survives the process being killed
 * (as SQLite's WAL does with `synchronous=NORMAL`); with `syncEachLine` it is also on the disk. The
 * ledger applies the lines to SQLite in larger transactions and then empties the journal; at
 * start-up, lines not yet applied are replayed.
 *
 * The file only ever holds whole lines, plus at most a line cut short by a crash at its end: a
 * failed append is cut back to the last good byte before anything else is written.
 */
export class Journal {
  readonly file: string;
  readonly #fd: number;
  readonly #io: JournalIo;
  readonly #syncEachLine: boolean;
  /** Bytes that hold whole lines; anything past them is a failed append. */
  #goodLength: number;
  #headerLength = 0;
  /** A failed append may have left bytes past `#goodLength`: they go before the next line is written. */
  #torn = false;
  #open = true;

  private constructor(file: string, fd: number, options: JournalOptions) {
    this.file = file;
    this.#fd = fd;
    this.#io = options.io ?? FILE_IO;
    this.#syncEachLine = options.syncEachLine;
    this.#goodLength = fs.fstatSync(fd).size;
  }

  static open(file: string, options: JournalOptions): Journal {
    const fd = fs.openSync(file, 'a+', 0o600);
    try {
      return new Journal(file, fd, options);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /** Starts the journal afresh, for the database `databaseId`: everything in it is in the store. */
  start(databaseId: string): void {
    const header: Header = { paygateJournal: 1, database: databaseId };
    this.#io.truncate(this.#handle(), 0);
    this.#goodLength = 0;
    this.#torn = false;
    this.#append(Buffer.from(`${JSON.stringify(header)}\n`));
    this.#headerLength = this.#goodLength;
  }

  append(entry: JournalEntry): void {
    this.#append(Buffer.from(`${JSON.stringify(entry)}\n`));
  }

  #append(line: Buffer): void {
    const fd = this.#handle();
    if (this.#torn) this.#cutBack();
    try {
      for (let written = 0; written < line.length; ) written += this.#io.write(fd, line, written);
      if (this.#syncEachLine) this.#io.sync(fd);
    } catch (error) {
      this.#torn = true;
      try {
        this.#cutBack();
      } catch {
        // Still torn: the next append cuts back before it writes, or fails.
      }
      throw error;
    }
    this.#goodLength += line.length;
  }

  /** The file descriptor; a closed journal's number may already belong to another file. */
  #handle(): number {
    if (!this.#open) throw new Error(`the ledger journal ${this.file} is closed`);
    return this.#fd;
  }

  #cutBack(): void {
    this.#io.truncate(this.#handle(), this.#goodLength);
    this.#torn = false;
  }

  /** Empties the journal (keeping its header) once everything in it is in the store. */
  clear(): void {
    this.#io.truncate(this.#handle(), this.#headerLength);
    this.#goodLength = this.#headerLength;
    this.#torn = false;
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    fs.closeSync(this.#fd);
  }
}
