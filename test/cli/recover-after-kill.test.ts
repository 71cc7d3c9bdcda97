// Proves: a jraid write killed with SIGKILL midway leaves a journal listing only the stripes in
// flight; recover resyncs exactly those and scrub then finds zero mismatches. A dirty degraded
// array is refused without --force; with it, the lost blocks read as EIO until rewritten. A
// resync-policy array gets a full resync.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { EXIT, JRAID_BIN, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';
import { STRIPES_IN_FLIGHT_MAX } from '../../src/engine/raid-array.js';
import { CLEAN_BATCH_STRIPES_DEFAULT } from '../../src/journal/manager.js';
import { examineMember } from '../../src/app/describe.js';
import { FLAG_DIRTY } from '../../src/format/superblock.js';

let ws: Workspace;

/** True once a write has begun on the members: the resync policy's dirty flag, or a dirty newest journal record. */
async function writing(members: string[]): Promise<boolean> {
  const seen = await Promise.all(members.map((path) => examineMember(path).catch(() => undefined)));
  if (seen.some((member) => ((member?.superblock?.flags ?? 0) & FLAG_DIRTY) !== 0)) return true;
  const records = seen.flatMap((member) => member?.journal ?? []).filter((slot) => slot.generation !== null);
  const newest = records.reduce<(typeof records)[number] | undefined>((best, slot) => (!best || slot.generation! > best.generation! ? slot : best), undefined);
  return newest !== undefined && newest.clean === false;
}

/** Runs `jraid write` and SIGKILLs it once it is writing (a fixed delay lost the race on a loaded machine). */
async function killedWrite(members: string[], input: string): Promise<void> {
  const child = execa(JRAID_BIN, ['write', members.join(','), '-o', '0', '-i', input], { reject: false, env: { JRAID_CONFIG: ws.config } });
  for (const started = Date.now(); !(await writing(members));) {
    expect(Date.now() - started, 'the write began').toBeLessThan(60_000);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  child.kill('SIGKILL');
  const result = await child;
  expect(result.signal).toBe('SIGKILL');
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`recover after SIGKILL on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('lists only the stripes in flight; recover resyncs them; scrub finds nothing', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 132 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      writeFileSync(ws.path('big'), randomBytes(300 * MIB));
      await killedWrite(members, ws.path('big'));
      const detail = readJson((await ws.run(['detail', '--json', spec])).stdout);
      expect(detail.state).toBe('active');
      expect(detail.journal.clean).toBe(false);
      const listed: number[] = detail.journal.dirtyStripes;
      expect(listed.length).toBeGreaterThan(0);
      // In flight: at most the stripes one write call keeps busy, plus the completed ones whose
      // clean-up was waiting for its batched member flush; a window near where the write had got to.
      const bound = STRIPES_IN_FLIGHT_MAX + CLEAN_BATCH_STRIPES_DEFAULT;
      expect(listed.length).toBeLessThanOrEqual(bound);
      expect(Math.max(...listed) - Math.min(...listed)).toBeLessThan(2 * bound);
      expect(listed.length).toBeLessThan(512); // of 2048 stripes written
      const recovered = await ws.run(['recover', spec, '--json']);
      expect(recovered.exitCode).toBe(EXIT.OK);
      const outcome = readJson(recovered.stdout);
      expect(outcome).toMatchObject({ recovered: true, action: 'dirty-stripes', tornBlocks: [] });
      expect(outcome.stripes).toEqual(listed);
      const scrub = await ws.run(['scrub', spec, '--json']);
      expect(readJson(scrub.stdout).mismatchCount).toBe(0);
      const again = await ws.run(['recover', spec]);
      expect(again.stdout).toMatch(/was shut down cleanly: nothing to recover/);
      expect(readJson((await ws.run(['detail', '--json', spec])).stdout).state).toBe('clean');
    });

    it('refuses a dirty degraded array without --force; with it, lost blocks read as EIO until rewritten', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 68 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      writeFileSync(ws.path('big'), randomBytes(150 * MIB));
      await killedWrite(members, ws.path('big'));
      const listed: number[] = readJson((await ws.run(['detail', '--json', spec])).stdout).journal.dirtyStripes;
      expect(listed.length).toBeGreaterThan(0);
      const degraded = [members[0], members[1], members[3]].join(',');
      const refused = await ws.run(['recover', degraded]);
      expect(refused.exitCode).toBe(EXIT.FAILED);
      expect(refused.stderr).toMatch(/not shut down cleanly and is degraded: the lost member's blocks in stripe\(s\) \d+/);
      expect(refused.stderr).toContain('[E_ARRAY_DIRTY]');
      const write = await ws.run(['write', degraded, '-o', '0'], { input: 'x' });
      expect(write.exitCode).toBe(EXIT.FAILED);
      expect(write.stderr).toContain('[E_ARRAY_DIRTY]');
      const forced = await ws.run(['recover', degraded, '--force', '--json']);
      expect(forced.exitCode).toBe(EXIT.DEGRADED);
      const outcome = readJson(forced.stdout);
      expect(outcome.lostBlocks.length).toBeGreaterThan(0);
      // Role 2's chunk of the first listed stripe where it holds data reads as EIO.
      const bad = outcome.lostBlocks[0];
      const read = await ws.run(['read', degraded, '-o', String(bad.firstBlock * 4096), '-l', '4096', '--output', ws.path('o')]);
      expect(read.exitCode).toBe(EXIT.FAILED);
      expect(read.stderr).toMatch(/recorded bad \(lost with a member during a crash\)/);
      expect(read.stderr).toContain('[E_BAD_BLOCK]');
      // Rewriting the whole block clears it.
      expect((await ws.run(['write', degraded, '-o', String(bad.firstBlock * 4096)], { input: Buffer.alloc(4096, 1) })).exitCode).toBe(EXIT.DEGRADED);
      const back = await ws.run(['read', degraded, '-o', String(bad.firstBlock * 4096), '-l', '4096', '--output', ws.path('o')]);
      expect(back.exitCode).toBe(EXIT.DEGRADED);
    });

    it('a resync-policy array gets a full resync after an unclean shutdown', async () => {
      ws = workspace();
      const members = await backend.members(ws, 3, 36 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '--consistency-policy', 'resync', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      expect(readJson((await ws.run(['detail', '--json', spec])).stdout)).toMatchObject({ consistencyPolicy: 'resync', journal: null });
      writeFileSync(ws.path('big'), randomBytes(60 * MIB));
      await killedWrite(members, ws.path('big'));
      expect(readJson((await ws.run(['detail', '--json', spec])).stdout).state).toBe('active');
      const recovered = readJson((await ws.run(['recover', spec, '--json'])).stdout);
      expect(recovered).toMatchObject({ action: 'full-resync' });
      expect(recovered.stripes).toHaveLength(512); // every stripe: 32 MiB / 64 KiB
      expect(readJson((await ws.run(['scrub', spec, '--json'])).stdout).mismatchCount).toBe(0);
    });
  });
}
