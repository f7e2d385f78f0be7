/**
 * The methods anyone may call without a key: what MCP clients send to connect (`initialize`,
 * `server/discover` of 2026-07-28, `ping`, and `logging/setLevel`, which SDK clients send right after
 * connecting) and to discover the tools and their prices. A client that got 401 for one of these
 * would start an OAuth flow the gate does not offer. Every other request needs a valid key.
 */
export const KEYLESS_METHODS: ReadonlySet<string> = new Set(['initialize', 'server/discover', 'ping', 'logging/setLevel', 'tools/list', 'resources/list', 'resources/templates/list', 'prompts/list']);
