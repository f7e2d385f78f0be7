import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CodeActionKind,
  DiagnosticSeverity,
  FileChangeType,
  TextDocuments,
  TextDocumentSyncKind,
  type CodeAction,
  type Connection,
  type Diagnostic,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { checkDocument, type CheckResult } from './config/check.ts';
import { fixEdits, type ConfigDiagnostic, type Fix } from './config/diagnostic.ts';
import { ConfigDocument } from './config/document.ts';
import type { ConfigFile } from './config/types.ts';
import { completeTools, describeTool } from './lsp/assist.ts';
import { FactsCache } from './lsp/factsCache.ts';
import { serveGateRequests } from './lsp/gateRequests.ts';
import { baseDirOf, isConfigFile } from './lsp/files.ts';

/** The value as a config to look things up in, when it is an object at all (it may not be valid). */
function asConfig(value: unknown): ConfigFile | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as ConfigFile) : undefined;
}

/** How long a daemon stopping after an unexpected error waits for its gate (which drains calls for up to 10 s). */
const FATAL_STOP_MS = 15_000;

/** Logs to the editor, when the connection still works: a failing log must not throw from an error handler. */
function tell(connection: Connection, line: string): void {
  try {
    connection.console.error(line);
  } catch {
    process.stderr.write(`${line}\n`);
  }
}

const SEVERITY = { error: DiagnosticSeverity.Error, warning: DiagnosticSeverity.Warning, hint: DiagnosticSeverity.Information } as const;

function toLsp(diagnostic: ConfigDiagnostic): Diagnostic {
  return {
    range: diagnostic.range,
    severity: SEVERITY[diagnostic.severity],
    code: diagnostic.code,
    source: 'paygate',
    message: diagnostic.message,
    ...(diagnostic.fix ? { data: { fix: diagnostic.fix } } : {}),
  };
}

/**
 * The PayGate daemon: a language server for PayGate configs. It checks `paygate.json`,
 * `*.paygate.json` and `.paygate/config.json` as they are typed (incremental sync) and as they change
 * on disk, completes and describes tool names from a gate running with the config, and offers the
 * fixes diagnostics carry. It also runs the editor's gate (the `paygate/*` requests of
 * `lsp/protocol.ts`). A failure inside a handler is logged to the client, never fatal; an error
 * nothing catches stops the gate cleanly and ends the daemon (exit code 1).
 */
export function startDaemon(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  /** The latest check of every config the daemon knows, open or on disk. */
  const checked = new Map<string, { version: number | undefined; result: CheckResult }>();
  const facts = new FactsCache((key) => {
    for (const [uri, entry] of checked) if (factsKeyOf(uri, entry.result) === key) publish(uri, entry.result.document.text, entry.version);
  });

  const factsKeyOf = (uri: string, result: CheckResult) => facts.get(asConfig(result.document.value()), baseDirOf(uri)).key;

  const guard = <T>(what: string, fallback: T, work: () => T): T => {
    try {
      return work();
    } catch (error) {
      connection.console.error(`paygate daemon: ${what} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return fallback;
    }
  };

  function publish(uri: string, text: string, version: number | undefined): void {
    guard(`checking ${uri}`, undefined, () => {
      // The document checked before is handed on: an edit inside one value is parsed alone.
      const document = checked.get(uri)?.result.document.edited(text) ?? new ConfigDocument(text);
      const result = checkDocument(document, facts.get(asConfig(document.value()), baseDirOf(uri)).facts);
      checked.set(uri, { version, result });
      void connection.sendDiagnostics({ uri, ...(version === undefined ? {} : { version }), diagnostics: result.diagnostics.map(toLsp) });
    });
  }

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      completionProvider: { triggerCharacters: ['"'] },
      hoverProvider: true,
      codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
    },
    serverInfo: { name: 'paygate-daemon' },
  }));

  documents.onDidChangeContent(({ document }) => {
    if (isConfigFile(document.uri)) publish(document.uri, document.getText(), document.version);
  });
  documents.onDidClose(({ document }) => {
    if (!isConfigFile(document.uri)) return;
    checked.delete(document.uri);
    void connection.sendDiagnostics({ uri: document.uri, diagnostics: [] });
  });

  connection.onDidChangeWatchedFiles(({ changes }) => {
    for (const change of changes) {
      if (!isConfigFile(change.uri) || documents.get(change.uri)) continue;
      if (change.type === FileChangeType.Deleted) {
        checked.delete(change.uri);
        void connection.sendDiagnostics({ uri: change.uri, diagnostics: [] });
        continue;
      }
      guard(`reading ${change.uri}`, undefined, () => publish(change.uri, fs.readFileSync(fileURLToPath(change.uri), 'utf8'), undefined));
    }
  });

  connection.onCompletion(({ textDocument, position }) =>
    guard('completion', [], () => {
      const entry = checked.get(textDocument.uri);
      if (!entry) return [];
      const config = asConfig(entry.result.document.value());
      return completeTools(entry.result.document, position, config, facts.tools(config, baseDirOf(textDocument.uri)));
    }),
  );

  connection.onHover(({ textDocument, position }) =>
    guard('hover', null, () => {
      const entry = checked.get(textDocument.uri);
      const config = entry?.result.config;
      if (!entry || !config) return null;
      return describeTool(entry.result.document, position, config, facts.tools(config, baseDirOf(textDocument.uri)));
    }),
  );

  connection.onCodeAction(({ textDocument, context }) =>
    guard('code actions', [], () => {
      const document = documents.get(textDocument.uri);
      const fixable = context.diagnostics.flatMap((diagnostic) => {
        const fix = (diagnostic.data as { fix?: Fix } | undefined)?.fix;
        return fix ? [{ diagnostic, fix }] : [];
      });
      // Asked at every move of the cursor: parse the text only when there is something to fix.
      if (!document || fixable.length === 0) return [];
      const config = new ConfigDocument(document.getText());
      return fixable.map(({ diagnostic, fix }): CodeAction => ({
        title: fix.title,
        kind: CodeActionKind.QuickFix,
        diagnostics: [diagnostic],
        isPreferred: true,
        edit: { changes: { [textDocument.uri]: fixEdits(config, fix) } },
      }));
    }),
  );

  const gates = serveGateRequests(connection);
  connection.onShutdown(() => gates.dispose());

  let failing = false;
  /**
   * An error nothing caught leaves the daemon in an unknown state: it stops its gate as a stop
   * command would (calls in flight finish and are recorded, the ledger is closed) and exits with 1,
   * and the editor starts it again.
   */
  const fail = (error: unknown) => {
    tell(connection, `paygate daemon: stopping after an unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (failing) return;
    failing = true;
    const exit = () => process.exit(1);
    setTimeout(exit, FATAL_STOP_MS);
    gates.dispose().then(exit, (stopError: unknown) => {
      tell(connection, `paygate daemon: the gate did not stop cleanly: ${String(stopError)}`);
      exit();
    });
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  documents.listen(connection);
  connection.listen();
}
