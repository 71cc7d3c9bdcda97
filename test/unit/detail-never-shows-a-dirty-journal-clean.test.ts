// Proves: detail reports the journal's own state: a dirty record (stripes awaiting recovery) is
// shown dirty even when the array is also degraded, never "clean" beside a list of dirty stripes.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { describeArray } from '../../src/app/describe.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

describe('detail and the journal', () => {
  it('a dirty record on a degraded array is shown dirty', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 4096 });
    const { array } = await assembleDevices(devices, { journal: { idleCleanMs: 0 } });
    await array.write(5000, Buffer.alloc(20_000, 9));
    await array.abandon(); // power lost: the newest record lists the stripes written
    const looked = await assembleDevices(devices.filter((_, i) => i !== 2), { readOnly: true, lock: 'none' });
    const detail = describeArray(looked.array, looked.report);
    expect(detail.state).toBe('degraded');
    expect(detail.journal!.dirtyStripes.length).toBeGreaterThan(0);
    expect(detail.journal!.clean).toBe(false);
    expect(detail.notes.join('\n')).toMatch(/await recovery/);
  });
});
