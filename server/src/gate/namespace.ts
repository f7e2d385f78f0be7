export const DEFAULT_NAMESPACE = 'default';

/** Letters, digits and hyphens, 1 to 50 of them; stored in lower case. */
export const NAMESPACE_PATTERN = '^[A-Za-z0-9-]{1,50}$';
