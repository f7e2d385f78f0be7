import { NotificationType, RequestType, RequestType0 } from 'vscode-languageserver-protocol';

/**
 * The `paygate/*` messages between the VS Code extension and the daemon, declared once for both
 * ends. The daemon runs the gate and says what state it is in; the extension only shows it.
 */

/** The first Node release with `node:sqlite` without a flag: the daemon needs it to run gates. */
export const SQLITE_NODE = '22.13.0';

/**
 * Node flags for a process that runs gates: a fixed 16 MiB young generation. Without it V8 grows the
 * young generation of a busy gate to 64 MiB semi-spaces, about 100 MiB more resident memory, with no
 * gain in throughput (README, "Memory").
 */
export const GATE_NODE_FLAGS = ['--max-semi-space-size=16'] as const;

/** A stdio MCP server to gate, as the workspace declares it (`.vscode/mcp.json`) or the user types it. */
export interface StdioServer {
  /** Becomes the tool prefix (`name:tool`) when several servers are gated together. */
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** What the gate is put in front of. */
export type GateSource =
  /** A PayGate config file: its servers, prices and limits. */
  | { kind: 'config'; file: string }
  /** Servers from the workspace; prices and limits from `config` when given, else the defaults. */
  | { kind: 'servers'; label: string; servers: StdioServer[]; config?: string }
  /** A command line, quoted as in a shell, as `paygate-mcp wrap --server` takes it; prices from `config` when given. */
  | { kind: 'command'; commandLine: string; config?: string };

export interface StartServerParams {
  source: GateSource;
  /** The folder that relative paths (state file, server working folders) are resolved against. */
  baseDir: string;
  /** Used where the config says nothing: the editor's settings `paygate.host`, `paygate.port`, `paygate.stateFile`. */
  defaults: { host: string; port: number; stateFile: string };
  /** The admin API's key, unless the config sets one. */
  adminKey: string;
  /** The editor's own API key for the gated endpoint; the daemon creates it in the state if it is missing. */
  devKey: string | undefined;
}

export interface StartServerResult {
  status: GateStatus;
  /** The dev key in force: the one given, or a new one to keep. */
  devKey: string;
}

export type GateState = 'stopped' | 'starting' | 'running' | 'failed';

export interface BackendState {
  name: string;
  up: boolean;
  detail: string | undefined;
}

export interface GateStatus {
  state: GateState;
  /** What the gate is in front of, for people. */
  label: string | undefined;
  url: string | undefined;
  port: number | undefined;
  stateFile: string | undefined;
  /** The config file the gate runs with and reloads on change, if any. */
  configFile: string | undefined;
  /** Why the gate failed to start, when `state` is `failed`. */
  error: string | undefined;
  /** Why the last change of the config file was refused (the previous config stays in force). */
  configProblems: string[];
  backends: BackendState[];
}

export const STOPPED: GateStatus = {
  state: 'stopped',
  label: undefined,
  url: undefined,
  port: undefined,
  stateFile: undefined,
  configFile: undefined,
  error: undefined,
  configProblems: [],
  backends: [],
};

export interface ToolUsage {
  /** As clients call it (`prefix:tool` when several servers are gated). */
  name: string;
  description: string | undefined;
  creditsPerCall: number;
  creditsPerKbInput: number;
  /** Calls per minute per key; 0 means no limit. */
  rateLimitPerMin: number;
  calls: number;
  creditsEarned: number;
  denied: number;
}

export interface ServerUsage {
  name: string;
  up: boolean;
  tools: ToolUsage[];
  /** For a server run as a process per key or per session. */
  processes?: PoolUsage;
}

/** A server's processes when it runs one per API key or per MCP session. */
export interface PoolUsage {
  isolation: 'key' | 'session';
  maxProcesses: number;
  /** Calls waiting for a process because all are busy. */
  queued: number;
  processes: ProcessUsage[];
}

export interface ProcessUsage {
  /** The key's prefix; null for the process that answers lists for clients without a key. */
  key: string | null;
  kind: 'key' | 'session' | 'catalog';
  /** Requests in flight. */
  calls: number;
  up: boolean;
}

export interface QuotaUse {
  what: 'daily calls' | 'monthly calls' | 'daily credits' | 'monthly credits';
  used: number;
  limit: number;
}

export interface KeyUsage {
  id: number;
  /** The first characters of the key, for recognising it. */
  keyPrefix: string;
  name: string;
  namespace: string;
  active: boolean;
  credits: number;
  spent: number;
  calls: number;
  /** ISO 8601, or null when never used. */
  lastUsedAt: string | null;
  /** The quotas that apply to the key (its own, else the gate's), with what it used. */
  quota: QuotaUse[];
}

export interface NamespaceUsage {
  namespace: string;
  keys: KeyUsage[];
  /** Keys in the namespace beyond those listed. */
  more: number;
}

/** Everything the usage panel and the status bar show. */
export interface UsageSnapshot {
  gate: GateStatus;
  callsPerMinute: number;
  servers: ServerUsage[];
  namespaces: NamespaceUsage[];
}

/** What the panel shows while no gate runs: the gate's state (stopped, starting or failed) and nothing else. */
export function idleSnapshot(gate: GateStatus = STOPPED): UsageSnapshot {
  return { gate, callsPerMinute: 0, servers: [], namespaces: [] };
}

export interface ToolInfo {
  name: string;
  description: string | undefined;
  inputSchema: Record<string, unknown> | undefined;
  creditsPerCall: number;
}

export interface CreateKeyParams {
  name: string;
  credits: number;
  namespace?: string;
}

export interface CreatedKey {
  /** The key itself: shown once, stored only as a hash. */
  key: string;
  id: number;
  keyPrefix: string;
}

export interface BatchCallParams {
  apiKey: string;
  calls: { name: string; arguments?: Record<string, unknown> }[];
}

export interface BatchItemResult {
  tool: string;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
  creditsCharged: number;
}

/** What the gate answered to `tools/call_batch`: the results, or why nothing ran. */
export type BatchOutcome =
  | { ok: true; results: BatchItemResult[]; totalCreditsCharged: number; remainingCredits: number | null }
  | { ok: false; code: number; message: string; data?: unknown };

export const StartServer = new RequestType<StartServerParams, StartServerResult, void>('paygate/startServer');
export const StopServer = new RequestType0<GateStatus, void>('paygate/stopServer');
export const Status = new RequestType0<UsageSnapshot, void>('paygate/status');
export const Tools = new RequestType0<ToolInfo[], void>('paygate/tools');
export const CreateKey = new RequestType<CreateKeyParams, CreatedKey, void>('paygate/createKey');
export const TopUp = new RequestType<{ id: number; credits: number }, { credits: number }, void>('paygate/topUp');
export const RevokeKey = new RequestType<{ id: number }, { revoked: true }, void>('paygate/revokeKey');
export const CallBatch = new RequestType<BatchCallParams, BatchOutcome, void>('paygate/callBatch');
/** Sent whenever what the panel shows changes: a call, a key change, the gate starting or stopping. */
export const UsageChanged = new NotificationType<UsageSnapshot>('paygate/usageChanged');
