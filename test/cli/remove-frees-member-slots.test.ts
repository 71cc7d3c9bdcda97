// Proves: `jraid remove` takes faulty members and spares out of the member table (refusing
// active and rebuilding ones), the freed slot is reused by the next member with a new member
// uuid, and the removed member's old superblock is never taken for the member now in its slot.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, JRAID_BIN, hashAll, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { examine } from '../helpers/examine.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

interface Member { number: number; path: string | null; state: string; role: number | null; uuid: string }

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`remove on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('removes faulty members and spares, refuses active and rebuilding ones, and reuses the slot', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 12 * MIB); // 3 raid devices and a spare
      const replacements = await backend.members(ws, 2, 12 * MIB, 'r');
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-x', '1', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const payload = randomBytes(4 * MIB);
      writeFileSync(ws.path('payload'), payload);
      expect((await ws.run(['write', 'r5', '-o', '0', '-i', ws.path('payload')])).exitCode).toBe(EXIT.OK);
      const detail = async () => readJson((await ws.run(['detail', 'r5', '--json'])).stdout);

      // Active members are refused, and nothing changes.
      const before = await hashAll(members);
      const active = await ws.run(['remove', 'r5', members[0]!]);
      expect(active.exitCode).toBe(EXIT.FAILED);
      expect(active.stderr).toMatch(new RegExp(`${members[0]} is active in the array \\(role 0\\): only faulty members and spares can be removed.*jraid fail-disk.*\\[E_REFUSED\\]`));
      expect(await hashAll(members)).toEqual(before);
      expect((await ws.run(['remove', 'r5', ws.path('stranger.img')])).stderr).toMatch(/\[E_MEMBER_UNKNOWN\]/);

      // A rebuilding member is refused: kill a throttled rebuild onto the spare half-way.
      expect((await ws.run(['fail-disk', 'r5', members[1]!])).exitCode).toBe(EXIT.DEGRADED);
      const rebuild = execa(JRAID_BIN, ['rebuild', 'r5', '--max-speed', '1M'], { reject: false, env: { JRAID_CONFIG: ws.config } });
      for (let waited = 0; waited < 15_000 && !((await detail()).rebuildPercent > 0); waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      rebuild.kill('SIGKILL');
      await rebuild;
      const rebuilding = await ws.run(['remove', 'r5', members[3]!]);
      expect(rebuilding.exitCode).toBe(EXIT.FAILED);
      expect(rebuilding.stderr).toMatch(new RegExp(`${members[3]} is being rebuilt \\(role 1, \\d+(\\.\\d)?% done\\).*\\[E_REFUSED\\]`));
      expect((await ws.run(['rebuild', 'r5'])).exitCode).toBe(EXIT.OK);

      // The faulty member goes; its slot (number 1) is free and detail no longer lists it.
      const faultyUuid = (await detail()).members.find((member: Member) => member.number === 1).uuid;
      const removed = await ws.run(['remove', 'r5', members[1]!, '--json']);
      expect(removed.exitCode).toBe(EXIT.OK);
      expect(readJson(removed.stdout)).toMatchObject({ removed: [{ number: 1, path: members[1], state: 'faulty', role: null, uuid: faultyUuid }], arrayState: 'clean', degraded: false });
      const after = await detail();
      expect(after.members.map((member: Member) => member.number)).toEqual([0, 2, 3]);
      expect(after).toMatchObject({ failedDevices: 0, totalDevices: 3, state: 'clean' });
      expect(readFileSync(ws.config, 'utf8')).not.toContain(members[1]!);
      expect((await examine(ws, members[0]!)).superblock.members[1]).toMatchObject({ state: 'free', role: null });

      // The next member takes the free slot, under a new member uuid.
      expect((await ws.run(['fail-disk', 'r5', members[2]!])).exitCode).toBe(EXIT.DEGRADED);
      const reused = readJson((await ws.run(['rebuild', 'r5', '--replacement', replacements[0]!, '--json'])).stdout);
      expect(reused.rebuilt).toEqual([expect.objectContaining({ index: 1, role: 2, path: replacements[0] })]);
      const own = (await examine(ws, replacements[0]!)).superblock;
      expect(own.thisIndex).toBe(1);
      expect(own.memberUuid).not.toBe(faultyUuid);
      expect((await detail()).members.map((member: Member) => member.number)).toEqual([0, 1, 2, 3]);

      // The removed member still carries its old superblock (slot 1, old uuid): it is not mistaken
      // for the member now in slot 1, whichever way it is named.
      expect((await examine(ws, members[1]!)).superblock).toMatchObject({ thisIndex: 1, memberUuid: faultyUuid });
      const named = await ws.run(['detail', [members[0], members[1], replacements[0], members[3]].join(',')]);
      expect(named.exitCode).toBe(EXIT.FAILED);
      expect(named.stderr).toMatch(new RegExp(`${members[1]} was removed from array r5.*\\[E_MEMBER_UNKNOWN\\]`));
      expect((await ws.run(['fail-disk', 'r5', members[1]!])).stderr).toMatch(/\[E_MEMBER_UNKNOWN\]/);
      const readd = await ws.run(['add', 'r5', members[1]!]);
      expect(readd.stderr).toMatch(/was removed from this array: use --force to add it again as a blank member.*\[E_MEMBER_FOREIGN\]/);
      const content = await ws.run(['read', 'r5', '-o', '0', '-l', String(payload.length), '--output', ws.path('back')]);
      expect(content.exitCode).toBe(EXIT.OK);
      expect(readFileSync(ws.path('back')).equals(payload)).toBe(true);

      // A spare goes too; `failed` removes every faulty member at once.
      expect((await ws.run(['add', 'r5', replacements[1]!])).exitCode).toBe(EXIT.OK);
      expect(readJson((await ws.run(['remove', 'r5', replacements[1]!, '--json'])).stdout).removed).toEqual([expect.objectContaining({ path: replacements[1], state: 'spare' })]);
      const all = readJson((await ws.run(['remove', 'r5', 'failed', '--json'])).stdout);
      // Member 2 was dropped from the config file's list when it was rebuilt around: no path known.
      expect(all.removed).toEqual([expect.objectContaining({ number: 2, path: null, state: 'faulty' })]);
      expect((await ws.run(['remove', 'r5', 'failed'])).stderr).toMatch(/no faulty member to remove.*\[E_REFUSED\]/);
      // A free entry at the end leaves the table (the spare's, 4); member 2's slot stays, free.
      expect((await examine(ws, members[0]!)).superblock.members.map((member) => member.state)).toEqual(['active', 'active', 'free', 'active']);
      expect((await ws.run(['scrub', 'r5'])).exitCode).toBe(EXIT.OK);
    });
  });
}
