/**
 * `npm run conformance`: the MCP conformance server scenarios, directly and through the gate.
 * Exits 1 if a scenario that passes directly fails through the gate, or if fewer than 28 pass.
 */
import { passedCount, regressions, runDirect, runThroughGate } from './conformance.ts';

const MINIMUM_THROUGH_GATE = 28;

const summary = (output: string) => output.slice(output.indexOf('=== SUMMARY ==='));

const direct = await runDirect();
process.stdout.write(`Directly against the example server:\n${summary(direct.output)}\n`);
const gated = await runThroughGate();
process.stdout.write(`Through the gate:\n${summary(gated.output)}\n`);
process.stdout.write(`direct:           ${direct.total}  (${passedCount(direct)} of ${direct.scenarios.size} scenarios)\n`);
process.stdout.write(`through the gate: ${gated.total}  (${passedCount(gated)} of ${gated.scenarios.size} scenarios)\n`);
const lost = regressions(direct, gated);
if (lost.length > 0) process.stdout.write(`passing directly but not through the gate: ${lost.join(', ')}\n`);
if (lost.length > 0 || passedCount(gated) < MINIMUM_THROUGH_GATE) process.exitCode = 1;
