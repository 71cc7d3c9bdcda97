// Proves: the seeded whole-engine fault simulation (degraded I/O, rebuild, re-add, scrub,
// crashes and recovery under read/write/flush errors in every region, the data journal
// included, vanishing and stale members, beyond-redundancy failures) runs on journal-policy
// arrays, RAID-5 and RAID-6, with no hang, no lost or silently wrong acknowledged write, no
// inconsistent parity after recovery and no internal error in any seed.
// JRAID_SIM_SEEDS / JRAID_SIM_OPS run a longer campaign; JRAID_SIM_SEED=N replays one seed with its trace.
import { expect, it } from 'vitest';
import { campaignFromEnv, runCampaign } from '../helpers/sim-run.js';

for (const level of [5, 6] as const) {
  const options = campaignFromEnv(level, { seeds: 150, operations: 200 });
  it.runIf(options !== undefined)(`RAID-${level} journal policy fault simulation: ${options?.seeds} seeds of ${options?.operations} operations, no violation`, async () => {
    const summary = await runCampaign({ ...options!, policy: 'journal' });
    console.log(summary.text);
    expect(summary.violations).toEqual([]);
    expect(summary.seeds).toBe(options!.onlySeed !== undefined ? 1 : options!.seeds);
  }, Math.max(900_000, options ? options.seeds * options.operations * 50 : 0));
}
