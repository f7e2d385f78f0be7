import type { Denial, KeyRecord } from './types.ts';

/** The key's own tool rules: an allow-list (when non-empty) and a deny-list. */
export function checkToolAccess(record: KeyRecord, tool: string): Denial | undefined {
  if (record.allowedTools.length > 0 && !record.allowedTools.includes(tool)) {
    return { reason: 'tool_not_allowed', message: `this key may not call "${tool}": it is not in the key's allowed tools` };
  }
  if (record.deniedTools.includes(tool)) {
    return { reason: 'tool_denied', message: `this key may not call "${tool}": it is in the key's denied tools` };
  }
  return undefined;
}

export function toolVisible(record: KeyRecord | undefined, tool: string): boolean {
  return record === undefined || checkToolAccess(record, tool) === undefined;
}
