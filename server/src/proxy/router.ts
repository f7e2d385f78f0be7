import { LruMap } from '../lruMap.ts';
import { BackendFailure, type BackendStatus, type ServerIdentity } from './backend.ts';
import { ErrorCode, isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcId } from './jsonrpc.ts';
import { allPages } from './pages.ts';
import type { PoolReport } from './pool.ts';
import type { AnswerOutcome, ClientChannel, Upstream } from './upstream.ts';

/** The separator between a server's prefix and its own name for a tool or prompt: `github:search`. */
export const PREFIX_SEPARATOR = ':';

/** The list methods whose items are merged, with the field that holds the items and what names them. */
const LISTS: Record<string, { field: string; key: 'name' | 'uri' | 'uriTemplate' | 'taskId'; prefixed: boolean }> = {
  'tools/list': { field: 'tools', key: 'name', prefixed: true },
  'prompts/list': { field: 'prompts', key: 'name', prefixed: true },
  'resources/list': { field: 'resources', key: 'uri', prefixed: false },
  'resources/templates/list': { field: 'resourceTemplates', key: 'uriTemplate', prefixed: false },
  'tasks/list': { field: 'tasks', key: 'taskId', prefixed: false },
};

/** Resource URIs whose server is remembered: the most recently listed or read. */
const RESOURCE_OWNERS = 10_000;
/** Task ids whose server is remembered: the most recently created or listed. */
const TASK_SERVERS = 100_000;

function invalid(message: string): JsonRpcAnswer {
  return { error: { code: ErrorCode.InvalidParams, message } };
}

/**
 * Several MCP servers behind one gate, each under a prefix: the tools and prompts of `github` are
 * `github:search`, ... Lists are merged from every server (a server that is down leaves its items
 * out); a call goes to the server its prefix names, with the prefix taken off. Resources keep their
 * URIs and are read from the server that listed them; tasks keep their ids and are asked of the
 * server that created them.
 */
export class Router implements Upstream {
  readonly #members: ReadonlyMap<string, Upstream>;
  readonly #resourceOwners = new LruMap<string, string>(RESOURCE_OWNERS);
  readonly #taskServers = new LruMap<string, string>(TASK_SERVERS);
  readonly #name: string;

  constructor(members: ReadonlyMap<string, Upstream>, name: string) {
    this.#members = members;
    this.#name = name;
  }

  async forward(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const list = LISTS[method];
    if (list) return this.#merged(method, list, params, channel, timeoutMs);
    switch (method) {
      case 'tools/call':
      case 'prompts/get':
        return this.#byName(method, params, channel, timeoutMs);
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        return this.#byUri(method, params, typeof params?.uri === 'string' ? params.uri : undefined, channel, timeoutMs);
      case 'tasks/get':
      case 'tasks/result':
      case 'tasks/cancel':
        return this.#byTask(method, params, channel, timeoutMs);
      case 'completion/complete':
        return this.#completion(params, channel, timeoutMs);
      case 'logging/setLevel':
        return this.#everywhere(method, params, channel, timeoutMs);
      default:
        return this.#first().forward(method, params, channel, timeoutMs);
    }
  }

  cancel(origin: string, requestId: JsonRpcId, reason: string | undefined): void {
    for (const member of this.#members.values()) member.cancel(origin, requestId, reason);
  }

  answer(id: JsonRpcId, answer: JsonRpcAnswer, from: { origin: string; keyHash: string | undefined }): AnswerOutcome {
    for (const member of this.#members.values()) {
      const outcome = member.answer(id, answer, from);
      if (outcome !== 'unknown') return outcome;
    }
    return 'unknown';
  }

  notifyFromClient(method: string, from: { origin: string; keyHash: string | undefined }): void {
    for (const member of this.#members.values()) member.notifyFromClient(method, from);
  }

  forgetOrigin(origin: string): void {
    for (const member of this.#members.values()) member.forgetOrigin(origin);
  }

  /** What every server offers together, under the gate's name. */
  identity(): ServerIdentity | undefined {
    const identities = [...this.#members].map(([prefix, member]) => [prefix, member.identity()] as const);
    if (identities.some(([, identity]) => identity === undefined)) return undefined;
    const capabilities: JsonObject = {};
    const instructions: string[] = [];
    for (const [prefix, identity] of identities) {
      for (const [name, value] of Object.entries(identity!.capabilities)) {
        capabilities[name] = isObject(value) && isObject(capabilities[name]) ? { ...(capabilities[name] as JsonObject), ...value } : value;
      }
      if (identity!.instructions) instructions.push(`${prefix}${PREFIX_SEPARATOR} ${identity!.instructions}`);
    }
    return {
      protocolVersion: identities[0]![1]!.protocolVersion,
      capabilities,
      serverInfo: { name: this.#name, version: '1' },
      ...(instructions.length ? { instructions: instructions.join('\n') } : {}),
    };
  }

  statuses(): Map<string, BackendStatus> {
    const statuses = new Map<string, BackendStatus>();
    for (const [prefix, member] of this.#members) for (const [label, status] of member.statuses()) statuses.set(`${prefix} (${label})`, status);
    return statuses;
  }

  pools(): Map<string, PoolReport> {
    const pools = new Map<string, PoolReport>();
    for (const [prefix, member] of this.#members) for (const [label, pool] of member.pools?.() ?? []) pools.set(`${prefix} (${label})`, pool);
    return pools;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#members.values()].map((member) => member.close()));
  }

  #first(): Upstream {
    return this.#members.values().next().value!;
  }

  /** Splits `prefix:name`; undefined when no server has that prefix. */
  #route(name: string): { member: Upstream; name: string } | undefined {
    const at = name.indexOf(PREFIX_SEPARATOR);
    if (at <= 0) return undefined;
    const member = this.#members.get(name.slice(0, at));
    return member && { member, name: name.slice(at + 1) };
  }

  #unknownPrefix(what: string, name: string): JsonRpcAnswer {
    return invalid(`no server serves ${what} "${name}": names here are prefix${PREFIX_SEPARATOR}name, with the prefixes ${[...this.#members.keys()].join(', ')}`);
  }

  #byName(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const name = params?.name;
    if (typeof name !== 'string') return this.#first().forward(method, params, channel, timeoutMs);
    const route = this.#route(name);
    if (!route) return Promise.resolve(this.#unknownPrefix(method === 'tools/call' ? 'the tool' : 'the prompt', name));
    const answer = route.member.forward(method, { ...params, name: route.name }, channel, timeoutMs);
    if (method !== 'tools/call' || params?.task === undefined) return answer;
    return answer.then((created) => {
      const task = 'result' in created ? created.result.task : undefined;
      if (isObject(task) && typeof task.taskId === 'string') this.#taskServers.set(task.taskId, name.slice(0, name.indexOf(PREFIX_SEPARATOR)));
      return created;
    });
  }

  #byTask(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const taskId = params?.taskId;
    const server = typeof taskId === 'string' ? this.#members.get(this.#taskServers.get(taskId) ?? '') : undefined;
    return (server ?? this.#first()).forward(method, params, channel, timeoutMs);
  }

  #byUri(method: string, params: JsonObject | undefined, uri: string | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const owner = uri === undefined ? undefined : this.#members.get(this.#resourceOwners.get(uri) ?? '');
    return (owner ?? this.#first()).forward(method, params, channel, timeoutMs);
  }

  #completion(params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const ref = params?.ref;
    if (isObject(ref) && ref.type === 'ref/prompt' && typeof ref.name === 'string') {
      const route = this.#route(ref.name);
      if (!route) return Promise.resolve(this.#unknownPrefix('the prompt', ref.name));
      return route.member.forward('completion/complete', { ...params, ref: { ...ref, name: route.name } }, channel, timeoutMs);
    }
    return this.#byUri('completion/complete', params, isObject(ref) && typeof ref.uri === 'string' ? ref.uri : undefined, channel, timeoutMs);
  }

  async #everywhere(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const answers = await Promise.allSettled([...this.#members.values()].map((member) => member.forward(method, params, channel, timeoutMs)));
    const answered = answers.find((answer) => answer.status === 'fulfilled');
    if (!answered) throw (answers[0] as PromiseRejectedResult).reason;
    return { result: {} };
  }

  async #merged(method: string, list: (typeof LISTS)[string], params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    if (params?.cursor !== undefined) return { result: { [list.field]: [] } };
    const members = [...this.#members];
    const pages = await Promise.allSettled(members.map(([, member]) => allPages(member, method, list.field, channel, timeoutMs)));
    const items: JsonObject[] = [];
    pages.forEach((page, index) => {
      // A server that refuses a page contributes the pages before it; one that cannot be reached, nothing.
      if (page.status !== 'fulfilled') return;
      const prefix = members[index]![0];
      for (const item of page.value.items) {
        const key = item[list.key];
        if (typeof key !== 'string') continue;
        if (list.prefixed) items.push({ ...item, [list.key]: `${prefix}${PREFIX_SEPARATOR}${key}` });
        else {
          if (list.key === 'uri') this.#resourceOwners.set(key, prefix);
          if (list.key === 'taskId') this.#taskServers.set(key, prefix);
          items.push(item);
        }
      }
    });
    if (items.length === 0 && pages.every((page) => page.status === 'rejected')) {
      throw new BackendFailure('down', `none of the servers answered ${method}`);
    }
    return { result: { [list.field]: items } };
  }
}
