import { configFacts } from '../config/facts.ts';
import type { ConfigFacts } from '../config/rules.ts';
import type { ConfigFile } from '../config/types.ts';

const FRESH_MS = 5_000;

interface Entry {
  facts: ConfigFacts;
  fetchedAt: number;
  refreshing: boolean;
}

function sameFacts(a: ConfigFacts, b: ConfigFacts): boolean {
  const tools = (facts: ConfigFacts) => (facts.tools ? [...facts.tools].sort() : null);
  return JSON.stringify({ ...a, tools: tools(a) }) === JSON.stringify({ ...b, tools: tools(b) });
}

/**
 * What the daemon knows about each config's surroundings (its gate's tools, its port, its state
 * folder). Checks use what is known at once; what is stale is fetched in the background and the
 * caller is told, so that typing never waits on the network.
 */
export class FactsCache {
  readonly #entries = new Map<string, Entry>();
  readonly #onRefreshed: (key: string) => void;

  constructor(onRefreshed: (key: string) => void) {
    this.#onRefreshed = onRefreshed;
  }

  /** The facts for this config as known now, starting a refresh if they are stale. */
  get(config: ConfigFile | undefined, baseDir: string, now = Date.now()): { key: string; facts: ConfigFacts } {
    const key = JSON.stringify([config?.host, config?.port, config?.stateFile, baseDir]);
    let entry = this.#entries.get(key);
    if (!entry) this.#entries.set(key, (entry = { facts: {}, fetchedAt: 0, refreshing: false }));
    if (config && !entry.refreshing && now - entry.fetchedAt > FRESH_MS) {
      entry.refreshing = true;
      void this.#refresh(key, entry, config, baseDir);
    }
    return { key, facts: entry.facts };
  }

  /** The tools a running gate for this config offers, if known. */
  tools(config: ConfigFile | undefined, baseDir: string): ReadonlySet<string> | undefined {
    return this.get(config, baseDir).facts.tools;
  }

  async #refresh(key: string, entry: Entry, config: ConfigFile, baseDir: string): Promise<void> {
    const before = entry.facts;
    let fresh: ConfigFacts;
    try {
      fresh = await configFacts(config, baseDir);
    } finally {
      entry.fetchedAt = Date.now();
      entry.refreshing = false;
    }
    // Refreshed every few seconds while typing: the configs are checked again only when something
    // changed, and unchanged facts stay the same objects (what checks worked out from them stays valid).
    if (sameFacts(before, fresh)) return;
    entry.facts = fresh;
    this.#onRefreshed(key);
  }
}
