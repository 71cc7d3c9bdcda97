// How member I/O reaches the kernel (issue 11): the same daemon and fio jobs (4 KiB random write
// and read, QD32, RAID-5 dirty-log atomic, laid out by 1 MiB writes) with each way of calling,
// beside the default (a worker thread per member draining a ring, device/member-ring.ts)
// measured in the same run: FileHandle reads and writes on libuv's pool (JRAID_MEMBER_IO=pool)
// of 16 threads (as bin/jraid sets it), of 4 and of 2, and pread/pwrite on the daemon's main
// thread (JRAID_MEMBER_IO=sync, an experiment switch). The variants run in
// turn, twice, and each figure is the better of its two runs, so a neighbour's load on a shared
// machine weighs on every variant alike. Needs fio.

import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench } from './measure.js';
import { fio, jraidArray } from './nbd.js';

const VARIANTS: { id: string; what: string; env: Record<string, string> }[] = [
  { id: 'ring', what: 'a worker thread per member (default)', env: { UV_THREADPOOL_SIZE: '16' } },
  { id: 'pool16', what: 'libuv pool of 16 threads', env: { UV_THREADPOOL_SIZE: '16', JRAID_MEMBER_IO: 'pool' } },
  { id: 'pool4', what: 'libuv pool of 4 threads', env: { UV_THREADPOOL_SIZE: '4', JRAID_MEMBER_IO: 'pool' } },
  { id: 'pool2', what: 'libuv pool of 2 threads', env: { UV_THREADPOOL_SIZE: '2', JRAID_MEMBER_IO: 'pool' } },
  { id: 'sync', what: 'pread/pwrite on the main thread', env: { UV_THREADPOOL_SIZE: '4', JRAID_MEMBER_IO: 'sync' } },
];
const ROUNDS = 2;

export const benchMemberIo: Bench = async (report) => {
  if ((await execa('which', ['fio'], { reject: false })).exitCode !== 0) {
    console.log('member-io bench skipped: fio is not installed');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-member-io-'));
  try {
    const array = await jraidArray(dir, 'mio', { level: 5, policy: 'dirty-log' });
    const best = new Map<string, { randwrite: number; randread: number }>();
    let laidOut = false;
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const daemon = await array.start('atomic', variant.env);
        try {
          if (!laidOut) await fio(daemon.uri, 'write', '1M', 8, []);
          laidOut = true;
          const randwrite = (await fio(daemon.uri, 'randwrite', '4k', 32)).iops;
          const randread = (await fio(daemon.uri, 'randread', '4k', 32)).iops;
          const before = best.get(variant.id) ?? { randwrite: 0, randread: 0 };
          best.set(variant.id, { randwrite: Math.max(before.randwrite, randwrite), randread: Math.max(before.randread, randread) });
        } finally {
          await daemon.stop();
        }
      }
    }
    const base = best.get(VARIANTS[0]!.id)!;
    for (const variant of VARIANTS.slice(1)) {
      const figures = best.get(variant.id)!;
      for (const job of ['randwrite', 'randread'] as const) {
        report({
          id: `member-io-${job}-${variant.id}`, name: `4K ${job} QD32, ${variant.what}`, figure: figures[job], unit: 'IOPS',
          reference: { what: VARIANTS[0]!.what, figure: base[job], unit: 'IOPS' },
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
