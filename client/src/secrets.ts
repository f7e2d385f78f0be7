import { randomBytes } from 'node:crypto';
import type * as vscode from 'vscode';

/** A key the editor created (or was given), kept so that it can be picked again for batch calls. */
export interface KeptKey {
  id: number;
  name: string;
  key: string;
}

/**
 * The secrets the extension keeps, all in VS Code's SecretStorage (never in settings or files):
 * the admin key of the editor's gates, the dev key per workspace folder (the key VS Code's own MCP
 * client and the batch commands use), and the keys created from the editor, per state file.
 */
export class Secrets {
  readonly #storage: vscode.SecretStorage;

  constructor(storage: vscode.SecretStorage) {
    this.#storage = storage;
  }

  /** The admin key, made on first use. */
  async adminKey(): Promise<string> {
    const kept = await this.#storage.get('paygate.adminKey');
    if (kept) return kept;
    const made = `admin_${randomBytes(24).toString('hex')}`;
    await this.#storage.store('paygate.adminKey', made);
    return made;
  }

  devKey(folder: string): Thenable<string | undefined> {
    return this.#storage.get(`paygate.devKey:${folder}`);
  }

  async keepDevKey(folder: string, key: string): Promise<void> {
    await this.#storage.store(`paygate.devKey:${folder}`, key);
  }

  async keys(stateFile: string): Promise<KeptKey[]> {
    const text = await this.#storage.get(`paygate.keys:${stateFile}`);
    return text ? (JSON.parse(text) as KeptKey[]) : [];
  }

  async keepKey(stateFile: string, key: KeptKey): Promise<void> {
    const keys = (await this.keys(stateFile)).filter((kept) => kept.id !== key.id);
    await this.#storage.store(`paygate.keys:${stateFile}`, JSON.stringify([...keys, key]));
  }

  async forgetKey(stateFile: string, id: number): Promise<void> {
    const keys = await this.keys(stateFile);
    await this.#storage.store(`paygate.keys:${stateFile}`, JSON.stringify(keys.filter((kept) => kept.id !== id)));
  }
}
