// Expected failures: each has a stable code that scripts may match and an exit code the
// CLI's one top-level handler uses. The message says what is wrong, which path, and what
// to do. A broken invariant is not one of these: it is an assertion (units.ts).

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** The command did its work, but the array is degraded or problems were found. */
export const EXIT_DEGRADED = 3;

export type ErrorCode =
  | 'E_USAGE'
  | 'E_BAD_SIZE'
  | 'E_BAD_LEVEL'
  | 'E_BAD_LAYOUT'
  | 'E_BAD_CHUNK'
  | 'E_BAD_POLICY'
  | 'E_TOO_FEW_MEMBERS'
  | 'E_TOO_MANY_MEMBERS'
  | 'E_MEMBER_TABLE_FULL'
  | 'E_MEMBER_MISSING'
  | 'E_MEMBER_IS_DIRECTORY'
  | 'E_MEMBER_NOT_BLOCK_OR_FILE'
  | 'E_MEMBER_BAD_PATH'
  | 'E_MEMBER_BUSY'
  | 'E_MEMBER_HAS_DATA'
  | 'E_PERMISSION'
  | 'E_MEMBER_DUPLICATE'
  | 'E_MEMBER_TOO_SMALL'
  | 'E_MEMBER_FOREIGN'
  | 'E_MEMBER_NOT_JRAID'
  | 'E_MEMBER_CORRUPT'
  | 'E_MEMBER_STALE'
  | 'E_MEMBER_UNKNOWN'
  | 'E_MIXED_ARRAYS'
  | 'E_ARRAY_FAILED'
  | 'E_ARRAY_LOCKED'
  | 'E_ARRAY_UNKNOWN'
  | 'E_ARRAY_DEGRADED'
  | 'E_ARRAY_DIRTY'
  | 'E_OUT_OF_RANGE'
  | 'E_CONFIG'
  | 'E_REFUSED'
  | 'E_NO_SPARE'
  | 'E_BAD_BLOCK'
  | 'E_DAEMON'
  | 'E_INPUT'
  | 'E_PROGRAM'
  | 'E_IO'
  | 'E_INTERNAL';

/** The command line itself is malformed or inconsistent: exit 2. Problems with paths or data: exit 1. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set([
  'E_USAGE', 'E_BAD_SIZE', 'E_BAD_LEVEL', 'E_BAD_LAYOUT', 'E_BAD_CHUNK', 'E_BAD_POLICY', 'E_TOO_FEW_MEMBERS', 'E_TOO_MANY_MEMBERS',
]);

export class JraidError extends Error {
  readonly code: ErrorCode;
  readonly path: string | undefined;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { path?: string; hint?: string; details?: Record<string, unknown> } = {}) {
    super(message);
    this.name = 'JraidError';
    this.code = code;
    this.path = options.path;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): number {
    return USAGE_CODES.has(this.code) ? EXIT_USAGE : EXIT_FAILED;
  }
}

export function isJraidError(error: unknown, code?: ErrorCode): error is JraidError {
  return error instanceof JraidError && (code === undefined || error.code === code);
}
