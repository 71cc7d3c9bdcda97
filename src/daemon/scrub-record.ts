// The last scrub's result, for jraid status: saved by whoever ran it (the daemon or the CLI).

import type { ScrubResult } from '../app/operations.js';
import { writeLastScrub } from './registry.js';

export async function recordScrub(uuid: string, result: ScrubResult, options: { onlyIfRunDirExists?: boolean } = {}): Promise<void> {
  await writeLastScrub(uuid, {
    finishedAt: new Date().toISOString(), repair: result.repaired, mismatches: result.mismatchCount,
    stripesChecked: result.stripesChecked, complete: true,
  }, options);
}
