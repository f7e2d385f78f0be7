/**
 * PayGate's policy as a library, without HTTP: run `npm run build`, then `npx node examples/library.ts`
 * (Node 22.18 or later runs TypeScript directly; in your own project, `npm install paygate-mcp`).
 */
import { Gate } from 'paygate-mcp';

const gate = new Gate({
  defaultCreditsPerCall: 1,
  toolPricing: { search: { creditsPerCall: 5 }, summarize: { creditsPerCall: 2, creditsPerKbInput: 1 } },
  globalRateLimitPerMin: 60,
});

const { key } = gate.createKey({ name: 'alice', credits: 12, deniedTools: ['delete_everything'] });

// Deciding changes nothing.
console.log('one search:', gate.evaluate(key, { name: 'search', arguments: { query: 'mcp' } }));
console.log('three searches:', gate.evaluateBatch(key, [{ name: 'search' }, { name: 'search' }, { name: 'search' }]));
console.log('a denied tool:', gate.evaluate(key, { name: 'delete_everything' }));

// Consuming charges the key when every call may go ahead, and nothing otherwise.
console.log('consume two searches:', await gate.consume(key, [{ name: 'search' }, { name: 'search' }]));
console.log('balance:', gate.balance(key));

gate.close();
