// Proves: through the daemon, fail/rebuild cycles fill the 64-entry member table with faulty
// members until a rebuild is refused with a clear error and a hint (exit 1, not a usage error);
// `jraid remove ARRAY failed` frees the slots, and with a remove after each cycle the table
// never grows, over more cycles than it takes to fill it.
import { afterEach, describe, expect, it } from 'vitest';
import { truncateSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { examine } from '../helpers/examine.js';
import { DaemonClient } from '../../src/daemon/control-client.js';
import type { DaemonRecord } from '../../src/daemon/registry.js';
import { MAX_MEMBERS } from '../../src/format/types.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

const MEMBER_BYTES = 4 * 1024 * 1024 + 64 * 1024; // the metadata and one 64 KiB chunk: one stripe to rebuild

describe('member table through the daemon', () => {
  it('fills up with faulty members, says how to free it, and stays bounded with remove', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-z', String(MEMBER_BYTES / 1024), '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'r5');
    pids.push(daemon.pid);
    // The control socket as the CLI uses it, without starting a process per command.
    const client = (await DaemonClient.connect({ controlSocket: daemon.controlSocket, pid: daemon.pid } as DaemonRecord))!;
    let current = [...members];
    let made = 0;
    const newMember = () => {
      const path = ws.path(`n${made++}.img`);
      writeFileSync(path, '');
      truncateSync(path, MEMBER_BYTES);
      return path;
    };
    /** Fails role 0's member and rebuilds it onto a new one; returns the error code if refused. */
    const cycle = async (): Promise<string | undefined> => {
      await client.call('fail-disk', { member: current[0] });
      try {
        const replacement = newMember();
        await client.call('rebuild', { replacement });
        current = [...current.slice(1), replacement];
        return undefined;
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    try {
      let cycles = 0;
      let refused: string | undefined;
      while (refused === undefined && cycles < 100) {
        refused = await cycle();
        if (refused === undefined) cycles++;
      }
      expect(refused).toBe('E_MEMBER_TABLE_FULL');
      expect(cycles).toBe(MAX_MEMBERS - 3);
      // The same refusal through the CLI: exit 1 (not a usage error) and what to do.
      const cli = await ws.run(['rebuild', 'r5', '--replacement', newMember()], { env });
      expect(cli.exitCode).toBe(EXIT.FAILED);
      expect(cli.stderr).toMatch(/the member table is full \(64 entries, 62 of them faulty\).*jraid remove r5 failed.*\[E_MEMBER_TABLE_FULL\]/);

      const freed = await ws.run(['remove', 'r5', 'failed', '--json'], { env });
      expect(freed.exitCode).toBe(EXIT.DEGRADED);
      expect(readJson(freed.stdout).removed).toHaveLength(62);
      const replacement = newMember();
      expect((await ws.run(['rebuild', 'r5', '--replacement', replacement], { env })).exitCode).toBe(EXIT.OK);
      current = [...current.slice(1), replacement]; // role 0's member failed in the refused cycle

      // Remove after every cycle: more cycles than filled the table, and it never grows: each
      // replacement takes the slot its predecessor freed (the lowest free one).
      const tableEntries = (await examine(ws, current[0]!)).superblock.members.length;
      for (let i = 0; i < MAX_MEMBERS + 16; i++) {
        const failed = current[0];
        expect(await cycle()).toBeUndefined();
        const { result } = await client.call<{ removed: { number: number }[] }>('remove', { member: failed });
        expect(result.removed).toHaveLength(1);
        const { result: detail } = await client.call<{ members: { number: number; path: string }[] }>('detail');
        expect(detail.members.map((member) => member.path).sort()).toEqual([...current].sort());
      }
      // It even shrinks: once the members in the high slots are gone, the free entries at the end
      // leave the table; what is left is the 3 members and at most the one slot freed last.
      const entriesAfter = (await examine(ws, current[0]!)).superblock.members.length;
      expect(entriesAfter).toBeLessThanOrEqual(tableEntries);
      expect(entriesAfter).toBeLessThanOrEqual(4);
      // a.img (assembled by the daemon at start, failed in the first cycle, removed since) held
      // slot 0, which a later member holds now: naming a.img must not reach that member.
      const holderOfSlot0 = (await client.call<{ members: { number: number; path: string; state: string }[] }>('detail')).result.members.find((member) => member.number === 0);
      expect(holderOfSlot0).toMatchObject({ state: 'active' });
      expect(holderOfSlot0!.path).not.toBe(members[0]);
      await expect(client.call('fail-disk', { member: members[0] })).rejects.toMatchObject({ code: 'E_MEMBER_UNKNOWN' });
      const detail = readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout);
      expect(detail).toMatchObject({ state: 'clean', failedDevices: 0, totalDevices: 3 });
      expect(detail.members.map((member: { path: string }) => member.path).sort()).toEqual([...current].sort());
    } finally {
      client.close();
    }
    expect((await ws.run(['stop', 'r5'], { env })).exitCode).toBe(EXIT.OK);
    // After the daemon: the members assemble as they are, and their parity is consistent. (The
    // control calls above bypass the CLI, which is what keeps the config file's list current.)
    expect((await ws.run(['scrub', current.join(',')])).exitCode).toBe(EXIT.OK);
  });
});
