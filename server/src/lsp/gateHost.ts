import path from 'node:path';
import { Writable } from 'node:stream';
import { resolveSettings } from '../cli/args.ts';
import type { GateSettings, ServerSpec } from '../config/types.ts';
import { UserFacingError } from '../errors.ts';
import { toolPricing } from '../gate/pricing.ts';
import { reloadOnChange } from '../hotReload.ts';
import { poolKeyPrefixes } from '../http/admin/present.ts';
import { generateApiKey } from '../keys/apiKey.ts';
import { describeServer } from '../proxy/connect.ts';
import { LineReader } from '../proxy/lineReader.ts';
import { listTools, type ListedTool } from '../proxy/listTools.ts';
import { poolView } from '../proxy/pool.ts';
import { startGate, type RunningGate } from '../service.ts';
import {
  idleSnapshot,
  STOPPED,
  type BatchCallParams,
  type BatchItemResult,
  type BatchOutcome,
  type CreatedKey,
  type CreateKeyParams,
  type GateSource,
  type GateStatus,
  type StartServerParams,
  type StartServerResult,
  type ToolInfo,
  type UsageSnapshot,
} from './protocol.ts';
import { usageSnapshot, type GatedServer } from './usage.ts';

const DEV_KEY_NAME = 'vscode-dev';
const DEV_KEY_CREDITS = 1000;
/** Changes within this time of the first reach the panel as one snapshot. */
const COALESCE_MS = 40;
/** How often backend states and the call rate are compared with what the panel last got. */
const RECHECK_MS = 2000;
const KEYS_PER_NAMESPACE = 100;
const NAMESPACES_SHOWN = 50;
const MINUTE_MS = 60_000;
const MAX_LOG_LINE_BYTES = 1024 * 1024;

/** A request to the gate was refused; the message says why, for the user. */
export class GateRequestError extends UserFacingError {}

/** What the daemon's running gate is: the gate, where it came from, and what it offers. */
interface Hosted {
  gate: RunningGate;
  label: string;
  configFile: string | undefined;
  adminKey: string;
  tools: ListedTool[];
  watcher: { close(): Promise<void> } | undefined;
  unsubscribe: () => void;
  /** Total paid calls, sampled over the last minute for the call rate. */
  samples: { at: number; calls: number }[];
}

function resolveIn(baseDir: string, spec: ServerSpec): ServerSpec {
  return spec.kind === 'stdio' ? { ...spec, cwd: path.resolve(baseDir, spec.cwd ?? '.') } : spec;
}

/** The config file a gate takes its settings from, and reloads when it changes. */
function configOf(source: GateSource): string | undefined {
  return source.kind === 'config' ? source.file : source.config;
}

/** The settings of a gate started from the editor: relative paths are taken from `baseDir`, not the daemon's folder. */
function settingsFor(params: StartServerParams, log: (line: string) => void): GateSettings {
  const { source } = params;
  const configFile = configOf(source);
  const flags = { ...(configFile === undefined ? {} : { config: configFile }), ...(source.kind === 'command' ? { server: source.commandLine } : {}) };
  const settings = resolveSettings(flags, {
    notes: log,
    defaults: params.defaults,
    ...(source.kind === 'servers'
      ? {
          servers: source.servers.map((server) => ({
            kind: 'stdio' as const,
            prefix: source.servers.length > 1 ? server.name : undefined,
            command: server.command,
            args: server.args,
            env: server.env,
            cwd: server.cwd,
          })),
        }
      : {}),
  });
  return {
    ...settings,
    stateFile: settings.stateFile === ':memory:' ? settings.stateFile : path.resolve(params.baseDir, settings.stateFile),
    servers: settings.servers.map((spec) => resolveIn(params.baseDir, spec)),
  };
}

function labelOf(source: GateSource, settings: GateSettings): string {
  if (settings.name) return settings.name;
  if (source.kind === 'config') return path.basename(source.file);
  return source.kind === 'servers' ? source.label : source.commandLine;
}

/** A stream that hands each line written to it to `log`. */
function lineLog(log: (line: string) => void, prefix: string): Writable {
  const lines = new LineReader(MAX_LOG_LINE_BYTES);
  const onLine = (line: string) => log(`${prefix}${line}`);
  const onOversized = () => log(`${prefix}(a line longer than ${MAX_LOG_LINE_BYTES} bytes was left out)`);
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk, onLine, onOversized);
      done();
    },
  });
}

/**
 * The gate the daemon runs for the editor: one at a time, in the daemon's process. It reports what
 * the usage panel shows whenever that changes, and serves the editor's key and batch commands
 * through the gate's own admin API and `/mcp`, as any client would.
 */
export class GateHost {
  readonly #log: (line: string) => void;
  #publishing: Promise<void> = Promise.resolve();
  readonly #publish: (snapshot: UsageSnapshot) => void;
  #hosted: Hosted | undefined;
  /** What the panel says while no gate runs: stopped, starting, or why the last start failed. */
  #idle: GateStatus = STOPPED;
  #pending: NodeJS.Timeout | undefined;
  #lastPublished = '';
  #switching: Promise<unknown> = Promise.resolve();
  readonly #recheck: NodeJS.Timeout;

  constructor(log: (line: string) => void, publish: (snapshot: UsageSnapshot) => void) {
    this.#log = log;
    this.#publish = publish;
    this.#recheck = setInterval(() => this.#publishIfChanged(), RECHECK_MS);
    this.#recheck.unref();
  }

  /** Starts a gate in front of `params.source`, stopping the one running first. */
  start(params: StartServerParams): Promise<StartServerResult> {
    return this.#oneAtATime(() => this.#start(params));
  }

  stop(): Promise<GateStatus> {
    return this.#oneAtATime(async () => {
      await this.#stopGate();
      this.#setIdle(STOPPED);
      return STOPPED;
    });
  }

  /** Runs starts and stops in the order asked, never two at once: two quick starts must not leave a gate behind. */
  #oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#switching.then(work);
    this.#switching = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #start(params: StartServerParams): Promise<StartServerResult> {
    await this.#stopGate();
    const readAt = Date.now();
    let settings: GateSettings;
    try {
      settings = settingsFor(params, this.#log);
    } catch (error) {
      return this.#failed(error, undefined);
    }
    const label = labelOf(params.source, settings);
    this.#setIdle({ ...STOPPED, state: 'starting', label, stateFile: settings.stateFile });
    const devKey = params.devKey ?? generateApiKey();
    settings.importKeys[devKey] ??= { name: DEV_KEY_NAME, credits: DEV_KEY_CREDITS };
    const adminKey = settings.adminKey ?? params.adminKey;
    let gate: RunningGate;
    try {
      gate = await startGate({ settings, adminKey, backendStderr: lineLog(this.#log, `[${label}] `), log: this.#log });
    } catch (error) {
      return this.#failed(error, label);
    }
    const configFile = configOf(params.source);
    const hosted: Hosted = {
      gate,
      label,
      configFile,
      adminKey,
      tools: (await this.#listTools(gate)) ?? [],
      watcher: undefined,
      unsubscribe: gate.engine.ledger.onChange(() => this.#schedule()),
      samples: [],
    };
    this.#hosted = hosted;
    if (configFile !== undefined) {
      hosted.watcher = reloadOnChange(gate, configFile, () => ({ ...settingsFor(params, this.#log), adminKey }), {
        log: this.#log,
        readAt,
        afterChange: () => void this.#refreshTools(hosted),
      });
    }
    hosted.samples.push({ at: Date.now(), calls: await this.#paidCalls(hosted) });
    this.#log(`gate running at ${gate.url} in front of ${gate.settings().servers.map(describeServer).join('; ')}`);
    this.#publishIfChanged();
    return { status: this.#runningStatus(hosted), devKey };
  }

  /** Stops the gate and the timers: the daemon is going away. */
  async dispose(): Promise<void> {
    clearInterval(this.#recheck);
    clearTimeout(this.#pending);
    await this.#oneAtATime(() => this.#stopGate());
  }

  async snapshot(): Promise<UsageSnapshot> {
    const hosted = this.#hosted;
    if (!hosted) return idleSnapshot(this.#idle);
    const { engine } = hosted.gate;
    const { ledger } = engine;
    const now = Date.now();
    const statuses = [...engine.upstream.statuses()];
    const pools = [...(engine.upstream.pools?.() ?? [])];
    const [prefixes, summaries, stats, callsPerMinute] = await Promise.all([
      poolKeyPrefixes(ledger, pools.map(([, pool]) => pool)),
      ledger.namespaces(),
      ledger.toolStats(),
      this.#callsPerMinute(hosted, now),
    ]);
    const keyPrefixOf = (keyHash: string) => prefixes.get(keyHash);
    const servers: GatedServer[] = hosted.gate.settings().servers.map((spec) => {
      const owns = ([label]: [string, unknown]) => spec.prefix === undefined || label.startsWith(`${spec.prefix} (`);
      const pool = pools.find(owns)?.[1];
      return {
        name: spec.prefix ?? hosted.label,
        prefix: spec.prefix,
        up: statuses.filter(owns).every(([, status]) => status.state === 'ready'),
        ...(pool ? { pool: poolView(pool, keyPrefixOf) } : {}),
      };
    });
    const namespaces = await Promise.all(
      summaries.slice(0, NAMESPACES_SHOWN).map(async ({ namespace, keyCount }) => ({ namespace, keyCount, keys: await ledger.listKeys({ namespace, limit: KEYS_PER_NAMESPACE }) })),
    );
    return usageSnapshot({
      gate: this.#runningStatus(hosted),
      callsPerMinute,
      servers,
      tools: hosted.tools,
      stats,
      policy: engine.policyEngine.policy,
      namespaces,
      now,
    });
  }

  /** The tools the gate offers now, asked from its servers afresh. */
  async tools(): Promise<ToolInfo[]> {
    const hosted = this.#require();
    await this.#refreshTools(hosted);
    const { policy } = hosted.gate.engine.policyEngine;
    return hosted.tools.map((tool) => ({
      name: tool.name,
      description: tool.description,
      inputSchema: tool.inputSchema,
      creditsPerCall: toolPricing(policy, tool.name).creditsPerCall,
    }));
  }

  async createKey(params: CreateKeyParams): Promise<CreatedKey> {
    const created = await this.#admin('/keys', params);
    return { key: String(created.key), id: Number(created.id), keyPrefix: String(created.keyPrefix) };
  }

  async topUp(id: number, credits: number): Promise<{ credits: number }> {
    const answer = await this.#admin('/topup', { id, credits });
    return { credits: Number(answer.credits) };
  }

  async revoke(id: number): Promise<{ revoked: true }> {
    await this.#admin('/keys/revoke', { id });
    return { revoked: true };
  }

  /** Runs `tools/call_batch` through the gate's `/mcp` with the given key, as a client would. */
  async callBatch(params: BatchCallParams): Promise<BatchOutcome> {
    const hosted = this.#require();
    const response = await fetch(hosted.gate.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': params.apiKey },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call_batch', params: { calls: params.calls } }),
    });
    const body = (await response.json().catch(() => undefined)) as
      | { result?: { results: BatchItemResult[]; totalCreditsCharged: number; remainingCredits: number | null }; error?: { code: number; message: string; data?: unknown } | string }
      | undefined;
    const { result, error } = body ?? {};
    if (typeof error === 'object') return { ok: false, code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) };
    if (result) return { ok: true, results: result.results, totalCreditsCharged: result.totalCreditsCharged, remainingCredits: result.remainingCredits };
    throw new GateRequestError(`the gate answered HTTP ${response.status}${typeof error === 'string' ? `: ${error}` : ''}`);
  }

  #require(): Hosted {
    if (!this.#hosted) throw new GateRequestError('no gate is running: start one with "PayGate: Start Gated Server"');
    return this.#hosted;
  }

  /** Calls the gate's admin API; a refusal becomes an error with the API's message. */
  async #admin(route: string, body: object): Promise<Record<string, unknown>> {
    const hosted = this.#require();
    const response = await fetch(hosted.gate.url.replace(/\/mcp$/, route), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-admin-key': hosted.adminKey },
      body: JSON.stringify(body),
    });
    const answer = ((await response.json().catch(() => undefined)) ?? {}) as Record<string, unknown>;
    if (!response.ok) throw new GateRequestError(typeof answer.error === 'string' ? answer.error : `the gate answered HTTP ${response.status}`);
    return answer;
  }

  async #refreshTools(hosted: Hosted): Promise<void> {
    hosted.tools = (await this.#listTools(hosted.gate)) ?? hosted.tools;
    if (this.#hosted === hosted) this.#publishIfChanged();
  }

  /** The gate's tools, or undefined (and a line in the log) when they cannot be listed. */
  async #listTools(gate: RunningGate): Promise<ListedTool[] | undefined> {
    try {
      return await listTools(gate.engine.upstream, gate.settings().callTimeoutMs);
    } catch (error) {
      this.#log(`cannot list the tools: ${(error as Error).message}`);
      return undefined;
    }
  }

  #runningStatus(hosted: Hosted): GateStatus {
    const { gate } = hosted;
    return {
      state: 'running',
      label: hosted.label,
      url: gate.url,
      port: gate.port,
      stateFile: gate.settings().stateFile,
      configFile: hosted.configFile,
      error: undefined,
      configProblems: [...gate.configProblems()],
      backends: [...gate.engine.upstream.statuses()].map(([name, status]) => ({ name, up: status.state === 'ready', detail: status.reason })),
    };
  }

  #failed(error: unknown, label: string | undefined): never {
    const message = error instanceof Error ? error.message : String(error);
    this.#setIdle({ ...STOPPED, state: 'failed', label, error: message });
    throw new GateRequestError(message);
  }

  async #stopGate(): Promise<void> {
    const hosted = this.#hosted;
    if (!hosted) return;
    this.#hosted = undefined;
    hosted.unsubscribe();
    await Promise.all([hosted.watcher?.close(), hosted.gate.close()]);
    this.#log(`gate at ${hosted.gate.url} stopped`);
  }

  async #paidCalls(hosted: Hosted): Promise<number> {
    let calls = 0;
    for (const stats of (await hosted.gate.engine.ledger.toolStats()).values()) calls += stats.calls;
    return calls;
  }

  /** Paid calls in the last minute (or since the gate started, if that is less than a minute ago). */
  async #callsPerMinute(hosted: Hosted, now: number): Promise<number> {
    const calls = await this.#paidCalls(hosted);
    const { samples } = hosted;
    samples.push({ at: now, calls });
    while (samples.length > 1 && samples[1]!.at <= now - MINUTE_MS) samples.shift();
    return calls - samples[0]!.calls;
  }

  #setIdle(status: GateStatus): void {
    this.#idle = status;
    this.#publishIfChanged();
  }

  /**
   * Publishes COALESCE_MS after the first change, with whatever else changed meanwhile: a quick call's
   * admission and settlement reach the panel as one snapshot, so VS Code redraws the tree once, at
   * once (it delays a second redraw within 200 ms to the end of that time).
   */
  #schedule(): void {
    this.#pending ??= setTimeout(() => {
      this.#pending = undefined;
      this.#publishIfChanged();
    }, COALESCE_MS);
  }

  /** Publishes one snapshot at a time, in order: a slower earlier read never overwrites a later one. */
  #publishIfChanged(): void {
    this.#publishing = this.#publishing.then(async () => {
      try {
        const snapshot = await this.snapshot();
        const text = JSON.stringify(snapshot);
        if (text === this.#lastPublished) return;
        this.#lastPublished = text;
        this.#publish(snapshot);
      } catch (error) {
        // The state could not be read (a store outage, or the gate stopped meanwhile): the next change or recheck publishes.
        this.#log(`cannot read the gate's usage: ${(error as Error).message}`);
      }
    });
  }
}
