import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  LoggingLevelSchema,
  SetLevelRequestSchema,
  type LoggingLevel,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { SERVER_NAME } from './serverInfo.ts';

export type RequestExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export type SendLog = (extra: RequestExtra, level: LoggingLevel, data: unknown) => Promise<void>;

const LEVELS = LoggingLevelSchema.options;

/**
 * Serves logging/setLevel and returns a sender of log notifications that drops those below the level
 * the client chose. The level is per connection, since each session has its own McpServer.
 */
export function enableLogging(server: McpServer): SendLog {
  let minLevel: LoggingLevel | undefined;
  server.server.setRequestHandler(SetLevelRequestSchema, (request) => {
    minLevel = request.params.level;
    return {};
  });
  return async (extra, level, data) => {
    if (minLevel !== undefined && LEVELS.indexOf(level) < LEVELS.indexOf(minLevel)) return;
    await extra.sendNotification({ method: 'notifications/message', params: { level, logger: SERVER_NAME, data } });
  };
}

/** Sends notifications/progress, but only when the caller asked for it with a progress token. */
export async function sendProgress(extra: RequestExtra, value: number, total: number, message?: string): Promise<void> {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined) return;
  await extra.sendNotification({
    method: 'notifications/progress',
    params: { progressToken, progress: value, total, ...(message !== undefined ? { message } : {}) },
  });
}
