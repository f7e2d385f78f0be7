/**
 * Splits a byte stream into lines (MCP's stdio framing: one JSON-RPC message per line). Lines are cut
 * at the byte 0x0A, which never occurs inside a multibyte UTF-8 character, and decoded whole, so a
 * character split across chunks arrives intact. A chunk holding whole lines is decoded in place,
 * without copying.
 */
export class LineReader {
  readonly #maxLineBytes: number;
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** True while skipping the rest of a line that went over the limit. */
  #skipping = false;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /**
   * Calls `onLine` for each line the chunk completes (without its `\n` or `\r\n`). A line longer than
   * the limit is not kept: `onOversized` is told once, and reading resumes at the next line.
   */
  push(chunk: Buffer, onLine: (line: string) => void, onOversized: () => void): void {
    let start = 0;
    for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
      const line = this.#complete(chunk, start, end, onOversized);
      start = end + 1;
      if (line !== undefined) onLine(line);
    }
    if (start === chunk.length || this.#skipping) return;
    if (this.#partialBytes + chunk.length - start > this.#maxLineBytes) {
      this.#drop(onOversized);
      this.#skipping = true;
      return;
    }
    this.#partial.push(chunk.subarray(start));
    this.#partialBytes += chunk.length - start;
  }

  /** The line ending at `end`, or undefined when it is dropped (over the limit, or the end of a skipped one). */
  #complete(chunk: Buffer, start: number, end: number, onOversized: () => void): string | undefined {
    if (this.#skipping) {
      this.#skipping = false;
      return undefined;
    }
    if (this.#partialBytes + end - start > this.#maxLineBytes) {
      this.#drop(onOversized);
      return undefined;
    }
    let bytes = chunk;
    if (this.#partial.length > 0) {
      this.#partial.push(chunk.subarray(start, end));
      bytes = Buffer.concat(this.#partial, this.#partialBytes + end - start);
      this.#partial = [];
      this.#partialBytes = 0;
      start = 0;
      end = bytes.length;
    }
    if (end > start && bytes[end - 1] === 0x0d) end--;
    return bytes.toString('utf8', start, end);
  }

  #drop(onOversized: () => void): void {
    this.#partial = [];
    this.#partialBytes = 0;
    onOversized();
  }
}
