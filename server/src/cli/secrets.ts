import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface Secret {
  value: string;
  /** True when it was made just now: the only time it is printed unasked. */
  created: boolean;
  /** Where it is kept, if anywhere. */
  file: string | undefined;
}

/**
 * A secret kept in a file readable only by its owner (mode 0600), made on first use. With no state
 * file (`:memory:`) nothing is kept and a new secret is made each time.
 */
export function keptSecret(file: string | undefined, make: () => string): Secret {
  if (file === undefined) return { value: make(), created: true, file: undefined };
  try {
    const value = fs.readFileSync(file, 'utf8').trim();
    if (value) return { value, created: false, file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  const value = make();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return { value, created: true, file };
}

export function newAdminKey(): string {
  return `admin_${randomBytes(16).toString('hex')}`;
}

/** The admin key file that goes with a state file. */
export function adminKeyFile(stateFile: string): string | undefined {
  return stateFile === ':memory:' ? undefined : `${path.resolve(stateFile)}.admin-key`;
}
