import { ErrorCode, isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcNotification, type JsonRpcRequest } from './jsonrpc.ts';
import type { ClientChannel } from './upstream.ts';

/** The `_meta` key that ties a server's message to one of its tasks (MCP 2025-11-25). */
const RELATED_TASK = 'io.modelcontextprotocol/related-task';

/** Requests that name one task, which only its owner may make. */
const TASK_REQUESTS = new Set(['tasks/get', 'tasks/result', 'tasks/cancel']);

/** Tasks remembered at most; past this the oldest are forgotten (they have usually expired long before). */
const MAX_TASKS = 100_000;

export interface OwnedTask {
  tenant: string;
  /** The client session (or stateless request) that created the task: its messages go there. */
  origin: string;
  expiresAt: number;
}

/** Who owns what a channel creates: its API key, or, for a keyless session (shadow mode), that session. */
export function tenantOf(channel: ClientChannel): string | undefined {
  if (channel.keyHash !== undefined) return `key:${channel.keyHash}`;
  return channel.sessionId === undefined ? undefined : `session:${channel.sessionId}`;
}

function notFound(taskId: unknown): JsonRpcAnswer {
  const message = typeof taskId === 'string' ? `Task not found: ${taskId}` : 'params.taskId must be the id of one of your tasks, as a string';
  return { error: { code: ErrorCode.InvalidParams, message } };
}

/** The task a server's message is about: its related-task `_meta`, or the task a status notification reports. */
export function relatedTaskOf(message: JsonRpcRequest | JsonRpcNotification): string | undefined {
  const params = message.params;
  if (message.method === 'notifications/tasks/status' && typeof params?.taskId === 'string') return params.taskId;
  const related = isObject(params?._meta) ? params._meta[RELATED_TASK] : undefined;
  return isObject(related) && typeof related.taskId === 'string' ? related.taskId : undefined;
}

/**
 * The owners of the tasks of a server shared by tenants. A task belongs to the key whose
 * `tools/call` created it; `tasks/list` shows a key only its own tasks, and `tasks/get`, `tasks/result`
 * and `tasks/cancel` of any other task are answered as for a task that does not exist, so that
 * nobody learns of another tenant's tasks. The server's own task ids are kept.
 */
export class TaskOwners {
  readonly #tasks = new Map<string, OwnedTask>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get size(): number {
    return this.#tasks.size;
  }

  /** The answer to a task request the caller may not make, or undefined when it may go to the server. */
  refusal(method: string, params: JsonObject | undefined, channel: ClientChannel): JsonRpcAnswer | undefined {
    if (method === 'tasks/list') return tenantOf(channel) === undefined ? { result: { tasks: [] } } : undefined;
    if (!TASK_REQUESTS.has(method)) return undefined;
    const taskId = params?.taskId;
    const tenant = tenantOf(channel);
    const owned = typeof taskId === 'string' && tenant !== undefined && this.#tasks.get(taskId)?.tenant === tenant;
    return owned ? undefined : notFound(taskId);
  }

  /** The server's answer as the caller gets it: a task it created is recorded as its own; a task list shows only its own. */
  answered(method: string, channel: ClientChannel, answer: JsonRpcAnswer): JsonRpcAnswer {
    if (!('result' in answer)) return answer;
    if (method === 'tools/call' && isObject(answer.result.task)) this.#record(answer.result.task, channel);
    if (method === 'tasks/list' && Array.isArray(answer.result.tasks)) {
      const tenant = tenantOf(channel);
      const own = answer.result.tasks.filter((task) => isObject(task) && typeof task.taskId === 'string' && this.#tasks.get(task.taskId)?.tenant === tenant);
      return { result: { ...answer.result, tasks: own } };
    }
    return answer;
  }

  /** Who a task belongs to; undefined for a task the gate does not know. */
  ownerOf(taskId: string): OwnedTask | undefined {
    return this.#tasks.get(taskId);
  }

  #record(task: JsonObject, channel: ClientChannel): void {
    const tenant = tenantOf(channel);
    if (typeof task.taskId !== 'string' || tenant === undefined) return;
    const now = this.#now();
    for (const [taskId, owned] of this.#tasks) {
      if (owned.expiresAt > now && this.#tasks.size < MAX_TASKS) break;
      this.#tasks.delete(taskId);
    }
    const expiresAt = typeof task.ttl === 'number' ? now + task.ttl : Number.POSITIVE_INFINITY;
    this.#tasks.set(task.taskId, { tenant, origin: channel.origin, expiresAt });
  }
}
