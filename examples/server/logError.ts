import { SERVER_NAME } from './serverInfo.ts';

/** Diagnostics go to stderr: in stdio mode stdout carries protocol messages only. */
export function logError(message: string): void {
  process.stderr.write(`[${SERVER_NAME}] ${message}\n`);
}
