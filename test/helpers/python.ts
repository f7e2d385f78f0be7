import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './gate.ts';

const run = promisify(execFile);

/** The official MCP Python SDK release the tests drive the gate with. */
export const PYTHON_MCP = 'mcp==2.3.0';

/** Where the tests keep their virtualenv, unless PAYGATE_TEST_PYTHON names a python that has the SDK already. */
const VENV = path.join(ROOT, 'node_modules', '.cache', `paygate-python-${PYTHON_MCP.replace('==', '-')}`);

/** pip's configured index, passed as --index-url so that pip does not wait on an unreachable default one. */
async function configuredIndexArgs(python: string): Promise<string[]> {
  if (process.env.PIP_INDEX_URL) return [];
  const { stdout } = await run(python, ['-m', 'pip', 'config', 'list'], { timeout: 30_000 }).catch(() => ({ stdout: '' }));
  const setting = (name: string) => new RegExp(`^(?:global|install)\\.${name}='([^']*)'`, 'm').exec(stdout)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
  const indexes = [...setting('index-url'), ...setting('extra-index-url')];
  return indexes.length === 0 ? [] : ['--index-url', indexes[0]!, ...indexes.slice(1).flatMap((url) => ['--extra-index-url', url])];
}

/**
 * A python that can import the MCP SDK: PAYGATE_TEST_PYTHON, else the tests' own virtualenv, made on
 * first use with `python3 -m venv` and pip's configured index. Returns why not when python3 has no venv
 * module (Debian's python3-venv package), the only reason the SDK tests are skipped (outside CI).
 */
export async function pythonWithMcp(): Promise<{ python: string } | { skip: string }> {
  if (process.env.PAYGATE_TEST_PYTHON) return { python: process.env.PAYGATE_TEST_PYTHON };
  const python = path.join(VENV, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
  if (existsSync(python) && (await run(python, ['-c', 'import mcp.client.client']).then(() => true, () => false))) return { python };
  try {
    await run('python3', ['-m', 'venv', VENV], { timeout: 120_000 });
  } catch (error) {
    const why = `python3 -m venv is not available (${(error as Error).message.split('\n')[0]}): install python3 and python3-venv to run the Python SDK tests`;
    // CI installs them (.ci/run): there a missing venv is a failure, not a reason to skip.
    if (process.env.CI) throw new Error(why);
    return { skip: why };
  }
  await run(python, ['-m', 'pip', 'install', '--quiet', ...(await configuredIndexArgs(python)), PYTHON_MCP], { timeout: 600_000 });
  return { python };
}

/** The python for a test file's SDK tests, and why they are skipped when they are (outside CI only). */
export async function sdkPython(): Promise<{ python: string; skip: string | false }> {
  const found = await pythonWithMcp();
  return 'skip' in found ? { python: '', skip: found.skip } : { python: found.python, skip: false };
}

/** Runs a script of test/python/ and returns the JSON object it prints last. */
export async function runPythonJson<T>(python: string, script: string, args: readonly string[], timeoutMs = 60_000): Promise<T> {
  const { stdout } = await run(python, [path.join(ROOT, 'test', 'python', script), ...args], { timeout: timeoutMs });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}
