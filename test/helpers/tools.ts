// External tools the interop suites drive. Locally a missing tool skips its suite; in CI
// (CI=true, where .ci/run installs them) a missing tool is a failure, so CI can never pass by skipping.

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** True when `name` is on PATH. When it is not: throws under CI, returns false elsewhere (use with describe.runIf). */
export function requireTool(name: string): boolean {
  if (findTool(name) !== undefined) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${name} is not installed, and CI must not skip the suites that need it (.ci/run installs it)`);
  }
  return false;
}
