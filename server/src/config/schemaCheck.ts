import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import schema from '../../../schemas/paygate.schema.json' with { type: 'json' };
import { ajv, describe } from '../validation/ajv.ts';
import { closest, type Finding } from './diagnostic.ts';
import type { ConfigDocument, JsonPath } from './document.ts';
import type { ConfigFile } from './types.ts';

let compiled: ValidateFunction<ConfigFile> | undefined;

/** The one compiled validator of schemas/paygate.schema.json, made on first use. */
function validator(): ValidateFunction<ConfigFile> {
  compiled ??= ajv.compile<ConfigFile>(schema);
  return compiled;
}

/** `toolPricing.search.creditsPerCall`, `servers[0].prefix`: a path as people read it. */
export function fieldName(path: JsonPath): string {
  if (path.length === 0) return 'the config';
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : index === 0 ? part : `.${part}`)).join('');
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (Number.isInteger(value)) return 'integer';
  return typeof value;
}

/** The errors of one `anyOf`/`oneOf` branch, by branch index. */
function branchesOf(composite: ErrorObject, errors: readonly ErrorObject[]): Map<number, ErrorObject[]> {
  const branches = new Map<number, ErrorObject[]>();
  const prefix = `${composite.schemaPath}/`;
  for (const error of errors) {
    if (!error.schemaPath.startsWith(prefix)) continue;
    if (error.instancePath !== composite.instancePath && !error.instancePath.startsWith(`${composite.instancePath}/`)) continue;
    const index = Number(error.schemaPath.slice(prefix.length).split('/')[0]);
    branches.set(index, [...(branches.get(index) ?? []), error]);
  }
  return branches;
}

/**
 * Ajv's errors for a composite (`anyOf`/`oneOf`): those of the branch the value was meant for (the
 * one whose type it has), or one sentence that says what would do.
 */
function resolveComposites(errors: readonly ErrorObject[], value: (path: string) => unknown): { errors: ErrorObject[]; composites: Map<ErrorObject, string> } {
  const dropped = new Set<ErrorObject>();
  const composites = new Map<ErrorObject, string>();
  for (const error of errors) {
    if (error.keyword !== 'anyOf' && error.keyword !== 'oneOf') continue;
    const branches = branchesOf(error, errors);
    for (const branchErrors of branches.values()) branchErrors.forEach((branchError) => dropped.add(branchError));
    const instanceType = typeOf(value(error.instancePath));
    const typed = [...branches.values()].filter((branchErrors) => !branchErrors.some((e) => e.keyword === 'type' && e.instancePath === error.instancePath));
    if (typed.length === 1 && !typed[0]!.every((e) => e.keyword === 'required')) {
      typed[0]!.forEach((branchError) => dropped.delete(branchError));
      dropped.add(error);
      continue;
    }
    const required = [...branches.values()].flat().filter((e) => e.keyword === 'required').map((e) => `"${String(e.params.missingProperty)}"`);
    const types = [...branches.values()].flat().filter((e) => e.keyword === 'type').map((e) => String(e.params.type));
    if (required.length > 0 && required.length === branches.size) {
      composites.set(error, error.keyword === 'oneOf' ? `needs exactly one of ${required.join(' or ')}` : `needs one of ${required.join(' or ')}`);
    } else if (branches.size === 0 && error.keyword === 'oneOf') {
      const alternatives = (error.schema as { required?: string[] }[]).flatMap((branch) => branch.required ?? []).map((name) => `"${name}"`);
      composites.set(error, alternatives.length ? `gives more than one of ${alternatives.join(' and ')}: keep one` : 'matches more than one of its allowed forms: keep one');
    } else {
      composites.set(error, `must be ${[...new Set(types)].join(' or ') || 'one of its allowed forms'}, not ${instanceType}`);
    }
  }
  return { errors: errors.filter((error) => !dropped.has(error)), composites };
}

/** Checks the document against the schema; every problem says where it is written. */
export function schemaFindings(document: ConfigDocument, value: unknown): { valid: boolean; findings: Finding[] } {
  const validate = validator();
  if (validate(value)) return { valid: true, findings: [] };
  const valueAt = (pointer: string) => document.pathOf(pointer).reduce<unknown>((node, part) => (node as Record<string | number, unknown> | undefined)?.[part], value);
  const { errors, composites } = resolveComposites(validate.errors ?? [], valueAt);
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    const path = document.pathOf(error.instancePath);
    let finding: Finding;
    if (error.keyword === 'additionalProperties') {
      const field = String(error.params.additionalProperty);
      const known = Object.keys(((error.parentSchema as { properties?: object } | undefined)?.properties ?? {}) as object).filter((name) => name !== '$schema');
      const suggestion = closest(field, known);
      const place = { path: [...path, field], part: 'key' as const };
      finding = {
        code: 'unknown-field',
        severity: 'error',
        message: `${fieldName(path)} has an unknown field "${field}"${suggestion ? `: did you mean "${suggestion}"?` : ''}`,
        place,
        fix: suggestion ? { title: `Rename to "${suggestion}"`, kind: 'rename', place, newText: suggestion } : { title: `Remove "${field}"`, kind: 'remove', place },
      };
    } else if (error.keyword === 'required' || composites.has(error)) {
      const message = composites.get(error) ?? `is missing the field "${String(error.params.missingProperty)}"`;
      finding = { code: error.keyword === 'required' ? 'missing-field' : 'invalid-value', severity: 'error', message: `${fieldName(path)} ${message}`, place: { path, part: 'key' } };
    } else {
      finding = { code: 'invalid-value', severity: 'error', message: `${fieldName(path)} ${describe(error)}`, place: { path, part: 'value' } };
    }
    const identity = `${finding.code}:${finding.message}`;
    if (!seen.has(identity)) {
      seen.add(identity);
      findings.push(finding);
    }
  }
  return { valid: false, findings };
}
