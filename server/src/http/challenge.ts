import type { Denial } from '../gate/types.ts';

const REALM = 'paygate';

/** RFC 6750 allows only these characters in a quoted `error_description`. */
const OUTSIDE_DESCRIPTION = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;

/**
 * The `WWW-Authenticate` challenge of a 401 for an API key (RFC 6750's form): `error="invalid_token"`
 * when a key was presented but is not valid, no error code when none was sent, and always a
 * sentence a person can act on. It names OAuth (`resource_metadata`) only where the gate offers
 * OAuth, which it does not yet.
 */
export function apiKeyChallenge(denial: Denial): string {
  const description = denial.message.replace(OUTSIDE_DESCRIPTION, '?');
  const error = denial.reason === 'missing_api_key' ? '' : ', error="invalid_token"';
  return `Bearer realm="${REALM}"${error}, error_description="${description}"`;
}

/** The challenge of the admin API's 401: its key travels in its own header, not as a bearer token. */
export const ADMIN_KEY_CHALLENGE = `X-Admin-Key realm="${REALM} admin API"`;
