import type { Denial, KeyRecord } from './types.ts';

/** The key's own tool rules: an allow-list (when non-empty) and a deny-list. */
export function checkToolAccess(record: KeyRecord, tool: string): Denial | undefined {
  if (record.allowedTools.length > 0 && !record.allowedTools.includes(tool)) {
    return { reason: 'tool_not_allowed', legacyReason: `tool_not_allowed: ${tool} not in allowedTools`, message: `this key may not call "${tool}": it is not in the key's allowed tools` };
  }
  if (record.deniedTools.includes(tool)) {
    return { reason: 'tool_denied', legacyReason: `tool_denied: ${tool} is in deniedTools`, message: `this key may not call "${tool}": it is in the key's denied tools` };
  }
  return undefined;
}

export function toolVisible(record: KeyRecord | undefined, tool: string): boolean {
  return record === undefined || checkToolAccess(record, tool) === undefined;
}
