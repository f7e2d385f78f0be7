/** JSON and JSONC text, read by characters: what the fast paths of `document.ts` and `spans.ts` need. */

export const QUOTE = 0x22;
export const COMMA = 0x2c;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
const BACKSLASH = 0x5c;
const SLASH = 0x2f;
const STAR = 0x2a;

export function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** `at` is an opening quote: the index after its closing one, or -1 when the string does not end. */
export function stringEnd(text: string, at: number): number {
  let close = text.indexOf('"', at + 1);
  while (close >= 0) {
    let backslashes = 0;
    while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return close + 1;
    close = text.indexOf('"', close + 1);
  }
  return -1;
}

export function skipSpace(text: string, at: number): number {
  while (isSpace(text.charCodeAt(at))) at++;
  return at;
}

function followsValue(code: number): boolean {
  return code === COMMA || code === CLOSE_BRACE || code === CLOSE_BRACKET || isSpace(code);
}

/**
 * In JSON text, the index after the value at `at`, found by its brackets and quotes alone (what is
 * inside is not checked); -1 when a string or a bracket does not close.
 */
export function valueEnd(text: string, at: number): number {
  const first = text.charCodeAt(at);
  if (first === QUOTE) return stringEnd(text, at);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    for (let index = at; index < text.length; index++) {
      const code = text.charCodeAt(index);
      if (code === QUOTE) {
        index = stringEnd(text, index) - 1;
        if (index < 0) return -1;
      } else if (code === OPEN_BRACE || code === OPEN_BRACKET) depth++;
      else if ((code === CLOSE_BRACE || code === CLOSE_BRACKET) && --depth === 0) return index + 1;
    }
    return -1;
  }
  // A number, true, false or null: it goes on until what may follow a value.
  let end = at + 1;
  while (end < text.length && !followsValue(text.charCodeAt(end))) end++;
  return end;
}

/** Where a `//` comment at `at` ends: at the next line break, or at the end of the text. */
function lineCommentEnd(text: string, at: number): number {
  let end = at;
  while (end < text.length && text.charCodeAt(end) !== 0x0a && text.charCodeAt(end) !== 0x0d) end++;
  return end;
}

/**
 * JSONC as JSON of the same length and lines: comments and trailing commas become spaces (line
 * breaks in comments stay), so every offset and position in the result holds in the JSONC text.
 * When a string or a block comment does not end, the text is returned as it is (JSON.parse then
 * fails and jsonc-parser says why). A comma after `{` or `[` is left: it is an error, not a trailing one.
 */
export function blankJsonc(text: string): string {
  const blanks: [number, number][] = [];
  let pendingComma = -1;
  let previous = -1;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (isSpace(code)) continue;
    if (code === SLASH && (text.charCodeAt(index + 1) === SLASH || text.charCodeAt(index + 1) === STAR)) {
      const close = text.charCodeAt(index + 1) === SLASH ? lineCommentEnd(text, index) : text.indexOf('*/', index + 2);
      if (close < 0) return text;
      const end = text.charCodeAt(index + 1) === SLASH ? close : close + 2;
      blanks.push([index, end]);
      index = end - 1;
      continue;
    }
    if ((code === CLOSE_BRACE || code === CLOSE_BRACKET) && pendingComma >= 0) blanks.push([pendingComma, pendingComma + 1]);
    pendingComma = code === COMMA && previous !== OPEN_BRACE && previous !== OPEN_BRACKET ? index : -1;
    previous = code;
    if (code === QUOTE) {
      const end = stringEnd(text, index);
      if (end < 0) return text;
      index = end - 1;
    }
  }
  if (blanks.length === 0) return text;
  blanks.sort((a, b) => a[0] - b[0]);
  const parts: string[] = [];
  let copied = 0;
  for (const [from, to] of blanks) {
    parts.push(text.slice(copied, from), text.slice(from, to).replace(/[^\r\n]/g, ' '));
    copied = to;
  }
  parts.push(text.slice(copied));
  return parts.join('');
}
