import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { isValidIpRule } from '../gate/ipRules.ts';

const addFormats = addFormatsModule.default;

/** One Ajv for the whole program: JSON Schema 2020-12, every error reported, our own formats. */
// strictRequired is off: `oneOf: [{required: [a]}, {required: [b]}]` names properties defined beside it.
export const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
addFormats(ajv);
// Annotations: the hover text editors show, and the sentence a failed check reads as.
ajv.addVocabulary(['markdownDescription', 'errorMessage']);
ajv.addFormat('ip-rule', { type: 'string', validate: isValidIpRule });

function where(error: ErrorObject, root: string): string {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('');
  return root + path;
}

/** What is wrong, after the field's name: `must be integer`, or the schema's own `errorMessage`. */
export function describe(error: ErrorObject): string {
  const custom = (error.parentSchema as { errorMessage?: unknown } | undefined)?.errorMessage;
  switch (error.keyword) {
    case 'additionalProperties':
      return `has an unknown field "${String(error.params.additionalProperty)}"`;
    case 'required':
      return `is missing the field "${String(error.params.missingProperty)}"`;
    case 'enum':
      return `must be one of ${(error.params.allowedValues as unknown[]).map((value) => JSON.stringify(value)).join(', ')}`;
    case 'pattern':
    case 'format':
      return typeof custom === 'string' ? custom : (error.message ?? 'is not valid');
    default:
      return error.message ?? 'is not valid';
  }
}

/** Readable sentences for Ajv errors, each naming the field: `body.credits must be integer`. */
export function explain(errors: readonly ErrorObject[] | null | undefined, root: string): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const error of errors ?? []) {
    if (error.keyword === 'if' || error.keyword === 'anyOf' || error.keyword === 'oneOf') continue;
    const line = `${where(error, root)} ${describe(error)}`;
    if (!seen.has(line)) {
      seen.add(line);
      lines.push(line);
    }
  }
  return lines.length ? lines : [`${root} is not valid`];
}

export type Validator<T> = ValidateFunction<T>;
