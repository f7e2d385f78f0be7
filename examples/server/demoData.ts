/** The fake, deterministic data behind the demo tools and resource: nothing here touches the network. */

/** Deterministic 32-bit FNV-1a hash, used to derive stable fake data from inputs. */
function hash(input: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(input, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Truncates on code points (never splits a surrogate pair). */
function truncate(text: string, maxChars: number): string {
  const chars = Array.from(text);
  return chars.length <= maxChars ? text : `${chars.slice(0, maxChars - 1).join('')}…`;
}

interface Doc {
  id: string;
  title: string;
  url: string;
  body: string;
}

const DOCS: readonly Doc[] = [
  {
    id: 'getting-started',
    title: 'Getting started with PayGate',
    url: 'https://docs.example.com/paygate/getting-started',
    body: 'Put PayGate in front of any MCP server. Clients connect to the gate, authenticate with an API key and are charged per tool call according to your price list.',
  },
  {
    id: 'api-keys',
    title: 'Creating and rotating API keys',
    url: 'https://docs.example.com/paygate/api-keys',
    body: 'Each customer gets one or more API keys. Keys can be revoked at any time; rotating a key keeps its balance and usage history.',
  },
  {
    id: 'pricing',
    title: 'Setting tool prices',
    url: 'https://docs.example.com/paygate/pricing',
    body: 'Prices are set per tool in credits. Free tools cost 0 credits. A call that returns an error is not charged unless you enable charging for failed calls.',
  },
  {
    id: 'rate-limits',
    title: 'Rate limits and quotas',
    url: 'https://docs.example.com/paygate/rate-limits',
    body: 'Limit calls per minute for each key, and cap daily spending. A request over the limit is rejected before it reaches the upstream server.',
  },
  {
    id: 'credits',
    title: 'Buying and topping up credits',
    url: 'https://docs.example.com/paygate/credits',
    body: 'Customers prepay credits. The balance is checked before each paid call, and the call is refused when the balance is too low.',
  },
  {
    id: 'usage-reports',
    title: 'Usage reports and invoices',
    url: 'https://docs.example.com/paygate/usage-reports',
    body: 'Every call is recorded with its key, tool, price and outcome. Export usage as CSV or JSON to build invoices.',
  },
  {
    id: 'webhooks',
    title: 'Webhooks for balance events',
    url: 'https://docs.example.com/paygate/webhooks',
    body: 'Receive a webhook when a balance runs low, when a key is revoked or when a daily spending cap is reached.',
  },
  {
    id: 'refunds',
    title: 'Refunds and disputed calls',
    url: 'https://docs.example.com/paygate/refunds',
    body: 'Refund a single call or a whole period. Refunded credits return to the key balance immediately.',
  },
];

export function searchDocs(query: string, limit: number) {
  const terms = Array.from(
    new Set(
      query
        .toLowerCase()
        .split(/[^\p{L}\p{N}]+/u)
        .filter((t) => t.length > 1),
    ),
  );
  const scored = DOCS.map((doc) => {
    const title = doc.title.toLowerCase();
    const body = doc.body.toLowerCase();
    let score = 0;
    for (const term of terms) {
      if (title.includes(term)) score += 2;
      if (body.includes(term)) score += 1;
    }
    return { doc, score };
  })
    .filter((hit) => hit.score > 0)
    .sort((a, b) => b.score - a.score || a.doc.id.localeCompare(b.doc.id));
  return {
    total: scored.length,
    results: scored.slice(0, limit).map(({ doc, score }) => ({
      id: doc.id,
      title: doc.title,
      url: doc.url,
      snippet: truncate(doc.body, 120),
      score,
    })),
  };
}

export function summarize(text: string): string {
  const normalized = text.trim().replace(/\s+/g, ' ');
  if (normalized === '') {
    return 'Summary: (empty text, 0 words)';
  }
  const words = normalized.split(' ').length;
  const sentences = normalized.split(/(?<=[.!?…])\s+/u).filter((s) => s !== '');
  const first = truncate(sentences[0] ?? normalized, 200);
  const sentenceInfo = sentences.length === 1 ? '1 sentence' : `${sentences.length} sentences`;
  return `Summary: ${first} (${words} ${words === 1 ? 'word' : 'words'}, ${sentenceInfo})`;
}

const CONDITIONS = ['sunny', 'partly cloudy', 'overcast', 'light rain', 'showers', 'windy', 'foggy', 'snow flurries'];
const DAY_LABELS = ['Today', 'Tomorrow', 'In 2 days'];

export function forecast(city: string) {
  const name = city.trim();
  const seed = hash(name.toLowerCase());
  const days = DAY_LABELS.map((day, i) => {
    const h = hash(`${seed}:${i}`);
    const high = -2 + (h % 32);
    // no snow in warm weather
    const conditions = high > 3 ? CONDITIONS.filter((c) => !c.includes('snow')) : CONDITIONS;
    return {
      day,
      condition: conditions[(h >>> 8) % conditions.length] ?? 'sunny',
      highC: high,
      lowC: high - 3 - ((h >>> 16) % 6),
      precipitationChance: ((h >>> 4) % 11) * 10,
      windKph: 5 + ((h >>> 12) % 30),
    };
  });
  return { city: name, days };
}

export const PRICING_GUIDE = `# Pricing guide (example server)

The prices below are a suggestion for the demo tools of this server. The gate decides
what is actually charged, from its own configuration; this server does not know about prices.

| Tool          | Suggested price | Why |
|---------------|-----------------|-----|
| \`echo\`        | free            | Handy to test connectivity and keys |
| \`weather\`     | 1 credit        | Cheap lookup |
| \`summarize\`   | 2 credits       | Text processing |
| \`search_docs\` | 3 credits       | Search over the documentation index |
| \`slow\`        | 5 credits       | Long-running call, useful to test timeouts and cancellation |
| \`fail\`        | 1 credit        | Always fails: failed calls are normally not charged |

All data returned by these tools is fake and deterministic.
`;
