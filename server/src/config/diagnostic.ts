import type { ConfigDocument, Place, Range, TextEdit } from './document.ts';

export type Severity = 'error' | 'warning' | 'hint';

/** An obvious fix: rename a property, replace a value (both by `newText`), or remove a property. */
export interface Fix {
  title: string;
  kind: 'rename' | 'replace' | 'remove';
  place: Place;
  newText?: string;
}

/** A problem found in a config, with where it is as a path; positions are worked out later. */
export interface Finding {
  code: string;
  severity: Severity;
  message: string;
  place: Place;
  fix?: Fix;
}

/** A problem in a config file: where it is, what it is (a stable code), and how to fix it. */
export interface ConfigDiagnostic {
  code: string;
  severity: Severity;
  message: string;
  range: Range;
  fix?: Fix;
}

/** The text edits that apply a fix. */
export function fixEdits(document: ConfigDocument, fix: Fix): TextEdit[] {
  if (fix.kind === 'remove') return document.removal(fix.place.path);
  const [range] = document.ranges([fix.place]);
  return [{ range: range!, newText: JSON.stringify(fix.newText ?? '') }];
}

/** `file:line:col severity code message`, 1-based, as compilers print them. */
export function formatDiagnostic(file: string, diagnostic: ConfigDiagnostic): string {
  const { line, character } = diagnostic.range.start;
  return `${file}:${line + 1}:${character + 1} ${diagnostic.severity} ${diagnostic.code} ${diagnostic.message}`;
}

/** The candidate closest to `word` by edit distance, if close enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const target = word.toLowerCase();
  const rows: [Int32Array, Int32Array] = [new Int32Array(64), new Int32Array(64)];
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    if (Math.abs(candidate.length - word.length) >= bestDistance) continue;
    const distance = editDistance(target, candidate.toLowerCase(), bestDistance, rows);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, giving up (returning `limit`) once it cannot be below `limit`; `rows` is scratch space. */
function editDistance(a: string, b: string, limit: number, rows: [Int32Array, Int32Array]): number {
  if (rows[0].length <= b.length) {
    rows[0] = new Int32Array(b.length + 1);
    rows[1] = new Int32Array(b.length + 1);
  }
  let [previous, current] = rows;
  for (let j = 0; j <= b.length; j++) previous[j] = j;
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let rowBest = i;
    const letter = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (letter === b.charCodeAt(j - 1) ? 0 : 1));
      current[j] = value;
      if (value < rowBest) rowBest = value;
    }
    if (rowBest >= limit) return limit;
    [previous, current] = [current, previous];
  }
  return previous[b.length]!;
}
