/** A root a shared server may work in (MCP `Root`): a `file://` URI, with a name for people. */
export interface Root {
  uri: string;
  name?: string;
}

export function sameRoots(a: readonly Root[], b: readonly Root[]): boolean {
  return a.length === b.length && a.every((root, index) => root.uri === b[index]!.uri && root.name === b[index]!.name);
}

/** The gate's answer to a shared server's `roots/list`: the roots of its config entry, never a client's. */
export function rootsList(roots: readonly Root[]): { result: { roots: Root[] } } {
  return { result: { roots: roots.map((root) => ({ ...root })) } };
}
