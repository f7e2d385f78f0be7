import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startDaemon } from '../daemon.ts';
import { parseFlags, UsageError } from './args.ts';

/**
 * `paygate-mcp lsp --stdio` (or `--node-ipc`, as VS Code starts it): the config language server.
 * It runs until the client closes the connection.
 */
export function runLsp(argv: string[]): Promise<undefined> {
  const { values } = parseFlags(argv, { stdio: { type: 'boolean' }, 'node-ipc': { type: 'boolean' }, 'clientProcessId': { type: 'string' } });
  if (!values.stdio && !values['node-ipc']) throw new UsageError('lsp needs a transport: --stdio (or --node-ipc when an editor starts it)');
  startDaemon(createConnection(ProposedFeatures.all));
  return new Promise(() => {});
}
