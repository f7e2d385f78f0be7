import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ConfigFacts } from './rules.ts';
import { runningGateTools } from './runningGate.ts';
import { DEFAULTS, type ConfigFile } from './types.ts';

/** Whether the port can be listened on now: 'free', 'in-use' or 'privileged' (or 'other' for anything else). */
function probePort(host: string, port: number): Promise<'free' | 'in-use' | 'privileged' | 'other'> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      resolve(error.code === 'EADDRINUSE' ? 'in-use' : error.code === 'EACCES' ? 'privileged' : 'other');
    });
    server.listen(port, host, () => server.close(() => resolve('free')));
  });
}

/** Why the state file could not be created or written, if it could not. */
function stateDirProblem(stateFile: string, baseDir: string): string | undefined {
  if (stateFile === ':memory:') return undefined;
  const file = path.resolve(baseDir, stateFile);
  let dir = path.dirname(file);
  while (!fs.existsSync(dir)) {
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.existsSync(file) ? (fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK), undefined) : undefined;
  } catch (error) {
    return `the state file ${file} cannot be ${fs.existsSync(file) ? 'read and written' : 'created'}: ${(error as Error).message}`;
  }
}

/** What the config's environment says: is its port free, can its state file be written. */
async function environmentFacts(config: ConfigFile, baseDir: string): Promise<ConfigFacts> {
  const facts: ConfigFacts = {};
  const problem = stateDirProblem(config.stateFile ?? DEFAULTS.stateFile, baseDir);
  if (problem) facts.stateDirProblem = problem;
  const port = config.port ?? DEFAULTS.port;
  if (port > 0) {
    const verdict = await probePort(config.host ?? DEFAULTS.host, port);
    if (verdict === 'in-use') facts.portInUse = true;
    if (verdict === 'privileged') facts.portPrivileged = true;
  }
  return facts;
}

/**
 * All that checking a config may know beyond its text: its environment, and the tools of a gate
 * running with it (whose port is then taken by that gate, which is no problem).
 */
export async function configFacts(config: ConfigFile, baseDir: string): Promise<ConfigFacts> {
  const [environment, tools] = await Promise.all([environmentFacts(config, baseDir), runningGateTools(config)]);
  return tools ? { ...environment, tools, portInUse: false } : environment;
}
