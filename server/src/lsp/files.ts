import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The config files the daemon checks: `paygate.json`, `*.paygate.json` and `.paygate/config.json`. */
export function isConfigFile(uri: string): boolean {
  if (!uri.startsWith('file:')) return /(?:^|\/)(?:[^/]*\.)?paygate\.json$|\/\.paygate\/config\.json$/.test(uri);
  const file = fileURLToPath(uri);
  const name = path.basename(file);
  return name === 'paygate.json' || name.endsWith('.paygate.json') || (name === 'config.json' && path.basename(path.dirname(file)) === '.paygate');
}

/** The folder relative paths in a config are read from (the file's own, for a file). */
export function baseDirOf(uri: string): string {
  return uri.startsWith('file:') ? path.dirname(fileURLToPath(uri)) : process.cwd();
}
