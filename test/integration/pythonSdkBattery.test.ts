import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { GateProcess, ROOT } from '../helpers/gate.ts';
import { runPythonJson, sdkPython } from '../helpers/python.ts';

const SERVER = path.join(ROOT, 'test', 'python', 'battery_server.py');

const { python, skip } = await sdkPython();

/** What the SDK client saw in one check (or the error it raised), and the credits its key lost meanwhile. */
interface Seen {
  error?: string;
  charged: number;
  [field: string]: unknown;
}

interface Report {
  protocolVersion: string;
  checks: Record<string, Seen>;
}

type ServerEra = 'legacy' | 'modern';
type ClientMode = 'legacy' | '2026-07-28' | 'auto';

const SERVERS: ReadonlyArray<readonly [string, ServerEra]> = [
  ['a legacy (2025-11-25) Python SDK server', 'legacy'],
  ['a Python SDK server that speaks only 2026-07-28', 'modern'],
];

const MODES: ReadonlyArray<readonly [string, ClientMode, string]> = [
  ['pinned to 2025-11-25', 'legacy', '2025-11-25'],
  ['pinned to 2026-07-28', '2026-07-28', '2026-07-28'],
  ['in auto mode', 'auto', '2026-07-28'],
];

const COUNT_PRICE = 2;

/** What each check must see through the gate, and what its key must be charged for it. */
const EXPECTED: Record<string, { fields: Record<string, unknown>; charged: number }> = {
  'tools/list': { fields: { prices: { echo: 1, fail: 1, count: COUNT_PRICE, ask_model: 1, ask_user: 1 } }, charged: 0 },
  'tools/call': { fields: { text: ['hello battery'], isError: false }, charged: 1 },
  'tools/call isError': { fields: { text: ['Error executing tool fail: failed on purpose: battery'], isError: true }, charged: 1 },
  resources: { fields: { uris: ['test://battery/readme'], read: ['battery readme'] }, charged: 0 },
  'resource templates': { fields: { templates: ['test://battery/colours/{colour}'], read: ['the colour red'] }, charged: 0 },
  prompts: { fields: { names: ['greet'], messages: ['Say hello to alice'] }, charged: 0 },
  completion: { fields: { prompt: ['alice', 'albert'], template: ['green'] }, charged: 0 },
  progress: {
    fields: { text: ['counted to 3'], isError: false, progress: [[1, 3, 'step 1'], [2, 3, 'step 2'], [3, 3, 'step 3']] },
    charged: COUNT_PRICE,
  },
  sampling: { fields: { text: ['the model said: a blue sky'], isError: false, asked: ['what colour is the sky?'] }, charged: 1 },
  elicitation: { fields: { text: ['the user accepted: green'], isError: false, asked: ['Pick a colour'] }, charged: 1 },
};

/** What a check is for, as its test name says it. */
const BEHAVIOUR: Record<string, string> = {
  'tools/list': 'lists the tools with their prices in _meta, for nothing',
  'tools/call': 'calls a tool, charged once',
  'tools/call isError': 'sees a failing tool as isError, charged once',
  resources: 'lists and reads resources, for nothing',
  'resource templates': 'lists resource templates and reads one, for nothing',
  prompts: 'lists prompts and gets one, for nothing',
  completion: "completes a prompt's and a template's argument, for nothing",
  progress: "receives a tool's progress in its callback, charged once",
  sampling: "answers the server's sampling in its callback, charged once",
  elicitation: "answers the server's elicitation in its callback, charged once",
};

/** Runs the whole battery with the SDK client in one mode, on one connection through the gate. */
async function battery(gate: GateProcess, key: string, mode: ClientMode): Promise<Report> {
  return runPythonJson<Report>(python, 'battery.py', [`${gate.base}/mcp`, key, mode], 120_000);
}

for (const [serverName, era] of SERVERS) {
  describe(`the official Python SDK 2.x client's battery through the gate, in front of ${serverName}`, { skip }, async () => {
    const gate = skip
      ? undefined
      : await GateProcess.start(['--rate-limit', '0', '--tool-price', `count:${COUNT_PRICE}`], { backend: { server: `"${python}" "${SERVER}" --era ${era}` } });

    for (const [how, mode, version] of MODES) {
      describe(how, () => {
        let report: Report;
        before(async () => {
          const { key } = await gate!.createKey({ credits: 100 });
          report = await battery(gate!, key, mode);
        });

        test(`it connects speaking ${version}`, () => {
          assert.equal(report.protocolVersion, version);
        });

        for (const [check, expected] of Object.entries(EXPECTED)) {
          test(`${check}: it ${BEHAVIOUR[check]}`, () => {
            const { error, charged, ...seen } = report.checks[check]!;
            assert.equal(error, undefined, `the SDK client raised: ${error}`);
            assert.deepEqual(seen, expected.fields);
            assert.equal(charged, expected.charged, `credits charged for ${check}`);
          });
        }
      });
    }
  });
}
