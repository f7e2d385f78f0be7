import { CLOSE_BRACE, CLOSE_BRACKET, COMMA, isSpace, OPEN_BRACE, OPEN_BRACKET, QUOTE, skipSpace, stringEnd, valueEnd } from './jsonText.ts';

/** The members of an object or array as written: names (or indices), and where each key and value is. */
export interface Members {
  /** Property names of an object, indices of an array, in the order of the text. */
  readonly names: (string | number)[];
  /** Where each property name's opening quote is (-1 in arrays). */
  readonly keyStarts: number[];
  /** Where each value starts and ends (the index after it). */
  readonly starts: number[];
  readonly ends: number[];
}

/** A value's members as written, and the index after the value; undefined when the text is not JSON there. */
function scanMembers(text: string, at: number): { members: Members; end: number } | undefined {
  const isObject = text.charCodeAt(at) === OPEN_BRACE;
  const members: Members = { names: [], keyStarts: [], starts: [], ends: [] };
  let index = skipSpace(text, at + 1);
  for (let item = 0; text.charCodeAt(index) !== (isObject ? CLOSE_BRACE : CLOSE_BRACKET); item++) {
    if (index >= text.length) return undefined;
    if (isObject) {
      const nameEnd = text.charCodeAt(index) === QUOTE ? stringEnd(text, index) : -1;
      if (nameEnd < 0) return undefined;
      const raw = text.slice(index + 1, nameEnd - 1);
      members.names.push(raw.includes('\\') ? (JSON.parse(text.slice(index, nameEnd)) as string) : raw);
      members.keyStarts.push(index);
      index = skipSpace(text, skipSpace(text, nameEnd) + 1);
    } else {
      members.names.push(item);
      members.keyStarts.push(-1);
    }
    const end = valueEnd(text, index);
    if (end < 0) return undefined;
    members.starts.push(index);
    members.ends.push(end);
    index = skipSpace(text, end);
    if (text.charCodeAt(index) === COMMA) index = skipSpace(text, index + 1);
  }
  return { members, end: index + 1 };
}

function isContainer(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return code === OPEN_BRACE || code === OPEN_BRACKET;
}

/** The member whose value holds the whole of [from, to), by binary search; -1 if none does. */
function memberAround(members: Members, from: number, to: number): number {
  let low = 0;
  let high = members.starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (members.starts[middle]! <= from) low = middle;
    else high = middle - 1;
  }
  return members.starts[low] !== undefined && members.starts[low]! <= from && to <= members.ends[low]! ? low : -1;
}

/** Adds `delta` to the offsets of members `from` onwards. */
function shift(members: Members, from: number, delta: number): void {
  for (let index = from; index < members.starts.length; index++) {
    if (members.keyStarts[index]! >= 0) members.keyStarts[index]! += delta;
    members.starts[index]! += delta;
    members.ends[index]! += delta;
  }
}

/** The index of `name` among the members, when it is there exactly once (a later duplicate overrides an earlier one). */
export function onlyMember(members: Members, name: string | number): number {
  const index = members.names.lastIndexOf(name);
  return index >= 0 && members.names.indexOf(name) === index ? index : -1;
}

/**
 * Where the values of a JSON document's first two levels are written: the members of the root
 * object or array, and the members of each of those that is itself an object or array (the tools
 * of `toolPricing`, the keys of `importKeys`). Built by one scan of brackets and quotes, then moved
 * along with each edit, it finds the one value an edit changed and where anything near the top is.
 */
export class JsonLayout {
  readonly rootStart: number;
  rootEnd: number;
  readonly top: Members;
  /** The members of each top-level value that is an object or array, by its index in `top`. */
  readonly nested: (Members | undefined)[];

  private constructor(rootStart: number, rootEnd: number, top: Members, nested: (Members | undefined)[]) {
    this.rootStart = rootStart;
    this.rootEnd = rootEnd;
    this.top = top;
    this.nested = nested;
  }

  /** The layout of JSON text (that `JSON.parse` accepts) whose root is an object or array; undefined otherwise. */
  static of(text: string): JsonLayout | undefined {
    const rootStart = skipSpace(text, 0);
    if (!isContainer(text, rootStart)) return undefined;
    const root = scanMembers(text, rootStart);
    if (!root) return undefined;
    const nested: (Members | undefined)[] = [];
    for (let index = 0; index < root.members.starts.length; index++) {
      const start = root.members.starts[index]!;
      if (!isContainer(text, start)) {
        nested.push(undefined);
        continue;
      }
      const inner = scanMembers(text, start);
      if (!inner) return undefined;
      nested.push(inner.members);
    }
    return new JsonLayout(rootStart, root.end, root.members, nested);
  }

  /**
   * The innermost value of the first two levels that holds the whole of [from, to) of the text:
   * its top-level index, and its index among that value's members (-1 for the top-level value itself).
   */
  around(from: number, to: number): { top: number; inner: number } | undefined {
    const top = memberAround(this.top, from, to);
    if (top < 0) return undefined;
    const nested = this.nested[top];
    return { top, inner: nested ? memberAround(nested, from, to) : -1 };
  }

  /**
   * Records that the value at `top`/`inner` (as `around` names it) now spans [start, end) of the new
   * text, which is `delta` longer than the old, and has `members` when it is a top-level object or array.
   */
  replaced(top: number, inner: number, start: number, end: number, delta: number, members: Members | undefined): void {
    const nested = this.nested[top];
    if (inner >= 0 && nested) {
      nested.starts[inner] = start;
      nested.ends[inner] = end;
      shift(nested, inner + 1, delta);
      this.top.ends[top]! += delta;
    } else {
      this.top.starts[top] = start;
      this.top.ends[top] = end;
      this.nested[top] = members;
    }
    shift(this.top, top + 1, delta);
    for (let index = top + 1; index < this.nested.length; index++) {
      const later = this.nested[index];
      if (later) shift(later, 0, delta);
    }
    this.rootEnd += delta;
  }

}

/** An edit as two texts differ: [from, to) of the one before became [from, to + delta) of the one after. */
export interface TextChange {
  from: number;
  to: number;
  delta: number;
}

/** Where two texts differ (the longest common start and, in what is left, the longest common end). */
export function difference(before: string, after: string): TextChange {
  const shorter = Math.min(before.length, after.length);
  // Compared a kilobyte at a time by the engine (slices share the text), then character by character.
  const CHUNK = 1024;
  let start = 0;
  while (start + CHUNK <= shorter && before.slice(start, start + CHUNK) === after.slice(start, start + CHUNK)) start += CHUNK;
  while (start < shorter && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  const most = shorter - start;
  let end = 0;
  while (end + CHUNK <= most && before.slice(before.length - end - CHUNK, before.length - end) === after.slice(after.length - end - CHUNK, after.length - end)) end += CHUNK;
  while (end < most && before.charCodeAt(before.length - end - 1) === after.charCodeAt(after.length - end - 1)) end++;
  return { from: start, to: before.length - end, delta: after.length - before.length };
}

function trimmed(text: string, start: number, end: number): { start: number; end: number } {
  start = skipSpace(text, start);
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return { start, end };
}

/**
 * The value of `after`, an edit (`change`) of `before`, found by parsing only the value of the first two levels
 * that the edit is inside and putting it in place of the old one. `before` is JSON text of value
 * `value` and layout `layout` (`beforeText`, the text as typed, has the same layout: it differs only
 * by blanked comments and trailing commas); `value` and `layout` are changed in place and describe
 * `after` from then on. The result is the value `JSON.parse` gives for the whole text: the text around
 * the changed value is the same, and a value that parses alone parses the same in its place. Undefined
 * when that does not hold (the edit spans several values, or what it leaves does not parse alone, or
 * a name is duplicated, so that the value in place is not the one written there); nothing is changed then.
 */
export function reparsed(
  layout: JsonLayout,
  value: unknown,
  before: string,
  beforeText: string,
  after: string,
  { from, to, delta }: TextChange,
): { value: unknown; json: string } | undefined {
  if (from === beforeText.length && delta === 0) return { value, json: before };
  const place = layout.around(from, to);
  if (!place) return undefined;
  const nested = layout.nested[place.top];
  const members = place.inner >= 0 ? nested! : layout.top;
  const index = place.inner >= 0 ? place.inner : place.top;
  const name = members.names[index]!;
  const topName = layout.top.names[place.top]!;
  if (typeof topName === 'string' && onlyMember(layout.top, topName) !== place.top) return undefined;
  if (typeof name === 'string' && onlyMember(members, name) !== index) return undefined;
  const [oldStart, oldEnd] = [members.starts[index]!, members.ends[index]!];
  const { start, end } = trimmed(after, oldStart, oldEnd + delta);
  let fresh: unknown;
  try {
    fresh = JSON.parse(after.slice(start, end));
  } catch {
    return undefined;
  }
  let inner: Members | undefined;
  if (place.inner < 0 && isContainer(after, start)) {
    inner = scanMembers(after, start)?.members;
    if (!inner) return undefined;
  }
  const container = (place.inner >= 0 ? (value as Record<string | number, unknown>)[topName] : value) as Record<string | number, unknown>;
  container[name] = fresh;
  layout.replaced(place.top, place.inner, start, end, delta, inner);
  const json = before === beforeText ? after : `${before.slice(0, oldStart)}${after.slice(oldStart, oldEnd + delta)}${before.slice(oldEnd)}`;
  return { value, json };
}
