import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BACKEND, GateProcess, ROOT, waitFor } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const CRASHING_GATE = path.join(ROOT, 'test', 'fixtures', 'crashingGate.ts');
/** The test server behind a shell, as `npx` or `sh -c` run servers; it keeps running when its stdin closes. */
const LAUNCHED = `sh -c 'TEST_OUTLIVE_STDIN=1 "${process.execPath}" "${BACKEND}"; exit 0'`;

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
}

/** The live processes (zombies are dead: they only wait to be reaped). */
function processes(): Proc[] {
  const found: Proc[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const [state, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state !== 'Z' && state !== 'X') found.push({ pid: Number(entry), ppid: Number(ppid), pgid: Number(pgid) });
  }
  return found;
}

const childrenOf = (pid: number) => processes().filter((proc) => proc.ppid === pid);
const groupOf = (pgid: number) => processes().filter((proc) => proc.pgid === pgid);
const isAlive = (pid: number) => processes().some((proc) => proc.pid === pid);

const groups = new Set<number>();
after(() => {
  // Whatever a failed test left running.
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {}
  }
});

/** The launcher (a child of `gatePid`) and the server it started, in the launcher's process group. */
async function serverOf(gatePid: number, except?: number): Promise<{ launcher: number; server: number }> {
  return waitFor('a launcher and its server', async () => {
    const launcher = childrenOf(gatePid).find((proc) => proc.pid !== except);
    const server = launcher && groupOf(launcher.pid).find((proc) => proc.pid !== launcher.pid);
    if (!launcher || !server) return undefined;
    groups.add(launcher.pid);
    return { launcher: launcher.pid, server: server.pid };
  });
}

test('when a server launcher dies, the server it started is stopped before the server starts again', async () => {
  const gate = await GateProcess.start([], { backend: { server: LAUNCHED } });
  const { key } = await gate.createKey();
  const old = await serverOf(gate.child.pid!);
  process.kill(old.launcher, 'SIGKILL');

  const deadline = Date.now() + 15_000;
  let restarted: number | undefined;
  while (restarted === undefined && Date.now() < deadline) {
    restarted = childrenOf(gate.child.pid!).find((proc) => proc.pid !== old.launcher)?.pid;
    // Checked after the new launcher was seen: were the old server alive now, the two would have run side by side.
    if (restarted !== undefined) assert.ok(!isAlive(old.server), `the old server ${old.server} still runs beside the new launcher ${restarted}`);
    else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(restarted !== undefined, 'the server was not started again');
  const now = await serverOf(gate.child.pid!, old.launcher);
  assert.notEqual(now.server, old.server);
  await waitFor('the gate to be healthy again', async () => ((await gate.health()).status === 200 ? true : undefined));
  assert.equal((await gate.callTool(key, 'echo', { text: 'again' })).json.result.content[0].text, 'again');
  assert.deepEqual(groupOf(old.launcher), []);
});

test('SIGHUP stops the gate cleanly, and its servers with it', async () => {
  const gate = await GateProcess.start([], { backend: { server: LAUNCHED } });
  const { launcher } = await serverOf(gate.child.pid!);
  gate.kill('SIGHUP');
  assert.equal(await gate.exited, 0);
  await waitFor('the server group to be gone', async () => (groupOf(launcher).length === 0 ? true : undefined));
});

/** Runs a gate through `startGate` in its own process (see the fixture), until it prints `ready`. */
async function embeddedGate() {
  const child = spawn(process.execPath, [CRASHING_GATE, LAUNCHED], { cwd: tempDir(), stdio: ['ignore', 'pipe', 'pipe'] });
  after(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await waitFor('the embedded gate to be ready', async () => (output.includes('ready') ? true : undefined));
  return { child, exited, output: () => output, ...(await serverOf(child.pid!)) };
}

test('a gate that dies of an uncaught exception leaves no server process behind', async () => {
  const gate = await embeddedGate();
  gate.child.kill('SIGUSR2');
  const { code } = await gate.exited;
  assert.equal(code, 1, gate.output());
  assert.match(gate.output(), /a bug in the gate/);
  await waitFor('the server group to be gone', async () => (groupOf(gate.launcher).length === 0 ? true : undefined), 3000);
  assert.ok(!isAlive(gate.server));
});

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  test(`a program running a gate that ${signal} ends leaves no server process behind, and still ends by ${signal}`, async () => {
    const gate = await embeddedGate();
    gate.child.kill(signal);
    assert.deepEqual(await gate.exited, { code: null, signal });
    await waitFor('the server group to be gone', async () => (groupOf(gate.launcher).length === 0 ? true : undefined), 3000);
  });
}
