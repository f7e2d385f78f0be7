export const MAIN_HELP = `paygate-mcp: a payment and usage gate for MCP servers

Usage:
  paygate-mcp wrap --server "<command>" [flags]   gate an MCP server (see: paygate-mcp wrap --help)
  paygate-mcp validate --config FILE [--json]     check a config: file:line:col severity code message
  paygate-mcp lsp --stdio                         the config language server (editor diagnostics)
  paygate-mcp demo [--port N] [--state-file F]    run the bundled example server behind a gate
  paygate-mcp keys import FILE [--state-file F]   import keys (JSON lines, or a paygate-mcp 2.x state file)
  paygate-mcp usage export --state-file F --since T --until T --format csv|jsonl [--out FILE]
                                                  write the usage events of a time range
  paygate-mcp --version | --help
`;

export const WRAP_HELP = `paygate-mcp wrap: put API keys, credits, rate limits and quotas in front of an MCP server

Usage: paygate-mcp wrap --server "<command>" [flags]

  --server <cmd>          the stdio MCP server to gate, parsed like a shell command line
  --config <file>         a paygate.json config (JSONC); flags override its fields
  --port <n>              port to listen on (default 3402; 0 = any free port)
  --host <addr>           address to listen on (default 127.0.0.1)
  --price <n>             credits per tool call (default 1)
  --tool-price <t:n,...>  per-tool prices, e.g. search:5,generate:10
  --rate-limit <n>        tool calls per minute per key (default 60; 0 = no limit)
  --name <s>              server name shown to clients
  --shadow                decide and record, but never block (try prices on live traffic)
  --refund-on-failure     refund calls that fail (JSON-RPC errors and isError results)
  --state-file <file>     SQLite state (default .paygate/state.db); a paygate-mcp 2.x JSON
                          state file is imported into <file>.sqlite and left untouched
  --no-state              keep nothing on disk
  --durability <mode>     process (default): charges survive the gate being killed;
                          power: also a power loss (the journal is synced; slower)
  --redis-url <url>       keep state in Redis (redis:// or rediss://user:pass@host:port/db)
                          instead of --state-file, shared by every gate given the same URL;
                          needs --admin-key (or adminKey), the same on every gate
  --admin-key <s>         admin key (default: made on first start, kept beside the state)
  --show-admin-key        print the kept admin key
  --import-key <k:n,...>  create these keys with n credits if they do not exist
  --trust-proxy           trust X-Forwarded-For from one proxy in front of the gate
  --allowed-origin <url>  let browsers on this origin call /mcp (repeatable)
  --call-timeout <ms>     fail and refund calls that take longer (default 60000; 0 = never)
  --usage-retention-days <n>
                          delete usage events older than n days, in small steps
                          (default 0 = keep everything; totals are kept apart)
  --refused-limit <n>     requests refused per minute to one address without a valid key
                          before it gets 429 (default 600; 0 = no limit)
  --remote-url <url>      gate a remote MCP server (Streamable HTTP) instead of --server
  --dry-run               start the servers, print each tool's price and limits, report
                          prices for tools no server offers, and stop
  -h, --help              this help
`;
