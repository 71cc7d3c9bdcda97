// Proves: real NBD clients (nbdinfo, nbdcopy, qemu-img, qemu-io, fio's nbd engine) negotiate with the server and move data through it intact, over a Unix socket and over TCP on loopback, including fio's verified random writes from four connections at once, and that fio's verify does catch a backend that corrupts reads.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdServer } from '../../src/daemon/nbd-server.js';
import { MIB } from '../../src/units.js';
import { MemoryNbdBackend } from '../helpers/nbd-memory-backend.js';
import { requireTool } from '../helpers/tools.js';

const EXPORT_SIZE_BYTES = 256 * MIB;
const SEED = 0x1d7e40;
const CLIENT_TIMEOUT_MS = 60_000;

/** Bytes that look random to every client and replay from the seed (AES-CTR over zeroes). */
function seededBytes(seed: number, lengthBytes: number): Buffer {
  const key = createHash('sha256').update(`jraid-nbd-interop-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(lengthBytes)), cipher.final()]);
}

interface Exported {
  server: NbdServer;
  backend: MemoryNbdBackend;
  unixUri: string;
  tcpUri: string;
}

async function exportMemory(socketPath: string, backend: MemoryNbdBackend): Promise<Exported> {
  const server = new NbdServer({ backend, logger: (level, message) => { if (level === 'error') console.error(message); } });
  await server.listen({ kind: 'unix', path: socketPath });
  const tcp = await server.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  if (tcp.kind !== 'tcp') throw new Error('expected a TCP address');
  expect(tcp.port).toBeGreaterThan(0);
  return { server, backend, unixUri: `nbd+unix:///?socket=${socketPath}`, tcpUri: `nbd://127.0.0.1:${tcp.port}/` };
}

async function run(command: string, args: string[]) {
  const result = await execa(command, args, { reject: false, timeout: CLIENT_TIMEOUT_MS, all: true });
  return { exitCode: result.exitCode, output: String(result.all ?? '') };
}

let dir: string;
let exported: Exported;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jraid-nbd-interop-'));
  exported = await exportMemory(join(dir, 'nbd.sock'), new MemoryNbdBackend(EXPORT_SIZE_BYTES));
});

afterAll(async () => {
  await exported?.server.close();
  expect(exported?.backend.violations ?? []).toEqual([]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.runIf(requireTool('nbdinfo'))('nbdinfo', () => {
  for (const transport of ['unix', 'tcp'] as const) {
    it(`reports the size, flags and block sizes over ${transport}`, async () => {
      const uri = transport === 'unix' ? exported.unixUri : exported.tcpUri;
      const { exitCode, output } = await run('nbdinfo', ['--json', uri]);
      expect(exitCode, output).toBe(0);
      const info = JSON.parse(output.slice(output.indexOf('{')));
      expect(info.protocol).toBe('newstyle-fixed');
      const [exportInfo] = info.exports;
      expect(exportInfo).toMatchObject({
        'export-size': EXPORT_SIZE_BYTES,
        block_size_minimum: 1,
        block_size_preferred: 4096,
        block_size_maximum: 32 * MIB,
        can_flush: true,
        can_fua: true,
        can_trim: true,
        can_zero: true,
        can_multi_conn: true,
        is_read_only: false,
      });
    });
  }
});

describe.runIf(requireTool('nbdcopy') && requireTool('qemu-img'))('nbdcopy and qemu-img', () => {
  it('nbdcopy copies a 256 MiB file in over Unix; qemu-img compare finds it identical over TCP', async () => {
    const imagePath = join(dir, 'random.img');
    const image = seededBytes(SEED, EXPORT_SIZE_BYTES);
    const handle = await open(imagePath, 'w');
    await handle.writeFile(image);
    await handle.close();
    const copy = await run('nbdcopy', [imagePath, exported.unixUri]);
    expect(copy.exitCode, copy.output).toBe(0);
    expect(exported.backend.bytes.equals(image)).toBe(true);
    const compare = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', imagePath, exported.tcpUri]);
    expect(compare.exitCode, compare.output).toBe(0);
    expect(compare.output).toMatch(/Images are identical/);
    // And a real difference is found (the comparison can fail).
    exported.backend.bytes[123 * MIB] ^= 0xff;
    const differs = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', imagePath, exported.unixUri]);
    expect(differs.exitCode, differs.output).toBe(1);
    exported.backend.bytes[123 * MIB] ^= 0xff;
    // nbdcopy out again, over TCP: the bytes come back unchanged.
    const outPath = join(dir, 'copy-out.img');
    const copyOut = await run('nbdcopy', [exported.tcpUri, outPath]);
    expect(copyOut.exitCode, copyOut.output).toBe(0);
    expect(readFileSync(outPath).equals(image)).toBe(true);
  });
});

describe.runIf(requireTool('qemu-io'))('qemu-io', () => {
  for (const transport of ['unix', 'tcp'] as const) {
    it(`pattern writes, zero writes, discard and flush read back verified over ${transport}`, async () => {
      const uri = transport === 'unix' ? exported.unixUri : exported.tcpUri;
      const base = transport === 'unix' ? 200 * MIB : 220 * MIB;
      const at = (mib: number) => String(base + mib * MIB);
      const { exitCode, output } = await run('qemu-io', ['-f', 'raw', uri,
        '-c', `write -P 0xab ${at(0)} 1M`,
        '-c', `read -P 0xab ${at(0)} 1M`,
        '-c', `write -P 0x5c ${at(1)} 3M`,
        '-c', `write -z ${at(2)} 512k`,
        '-c', `read -P 0x5c ${at(1)} 1M`,
        '-c', `read -P 0 ${at(2)} 512k`,
        '-c', `write -f -P 0x77 ${at(4)} 64k`,
        '-c', `discard ${at(5)} 1M`,
        '-c', 'flush',
        '-c', `read -P 0x77 ${at(4)} 64k`,
      ]);
      expect(exitCode, output).toBe(0);
      expect(output).not.toMatch(/fail|error/i);
      expect(exported.backend.bytes[base]).toBe(0xab);
      expect(exported.backend.bytes[base + 2 * MIB]).toBe(0);
      expect(exported.backend.bytes[base + 4 * MIB]).toBe(0x77);
      // A pattern that is not there is reported (the verification can fail).
      const mismatch = await run('qemu-io', ['-f', 'raw', uri, '-c', `read -P 0xcd ${at(0)} 4k`]);
      expect(mismatch.output).toMatch(/Pattern verification failed/);
    });
  }
});

describe.runIf(requireTool('fio'))('fio nbd engine', () => {
  interface FioJob { jobname: string; error: number; write: { total_ios: number }; read: { total_ios: number } }

  async function fio(uri: string, options: { jobs: number; regionBytes: number; firstOffsetBytes: number; name: string }) {
    const outputPath = join(dir, `${options.name}.json`);
    const result = await run('fio', [
      `--name=${options.name}`, '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=32',
      `--numjobs=${options.jobs}`, `--size=${options.regionBytes}`, `--offset=${options.firstOffsetBytes}`, `--offset_increment=${options.regionBytes}`,
      // No verify state files: fio would otherwise leave them in the working directory.
      '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--output-format=json', `--output=${outputPath}`,
    ]);
    let jobs: FioJob[] = [];
    try {
      jobs = JSON.parse(readFileSync(outputPath, 'utf8')).jobs;
    } catch {
      // no report: the exit code and output say why
    }
    return { ...result, jobs };
  }

  it('4 jobs (4 connections) of verified random 4 KiB writes at iodepth 32 over Unix', async () => {
    const regionBytes = 16 * MIB;
    // A turn of the event loop per call lets requests overlap in the backend, as they would on disks.
    exported.backend.latency = () => new Promise((resolve) => setImmediate(resolve));
    exported.backend.activeMax = 0;
    let connectionsMax = 0;
    const sampler = setInterval(() => {
      connectionsMax = Math.max(connectionsMax, exported.server.connectionCount);
    }, 5);
    const result = await fio(exported.unixUri, { jobs: 4, regionBytes, firstOffsetBytes: 0, name: 'unix' }).finally(() => {
      clearInterval(sampler);
      exported.backend.latency = undefined;
    });
    expect(result.exitCode, result.output).toBe(0);
    expect(result.jobs).toHaveLength(4);
    for (const job of result.jobs) {
      expect(job.error).toBe(0);
      expect(job.write.total_ios).toBe(regionBytes / 4096);
      expect(job.read.total_ios).toBe(regionBytes / 4096); // every block read back and verified
    }
    expect(connectionsMax).toBe(4);
    expect(exported.backend.activeMax).toBeGreaterThan(4); // requests in flight on several connections at once
  });

  it('2 jobs of verified random writes over TCP', async () => {
    const result = await fio(exported.tcpUri, { jobs: 2, regionBytes: 8 * MIB, firstOffsetBytes: 128 * MIB, name: 'tcp' });
    expect(result.exitCode, result.output).toBe(0);
    expect(result.jobs.map((job) => job.error)).toEqual([0, 0]);
  });

  it('fio verify catches a backend that corrupts what it reads back (the check can fail)', async () => {
    const backend = new MemoryNbdBackend(32 * MIB);
    const read = backend.read.bind(backend);
    backend.read = async (offsetBytes, lengthBytes, target) => {
      const data = await read(offsetBytes, lengthBytes, target);
      if (offsetBytes % (64 * 4096) === 0) data[100] ^= 0x01;
      return data;
    };
    const corrupt = await exportMemory(join(dir, 'corrupt.sock'), backend);
    try {
      const result = await fio(corrupt.unixUri, { jobs: 1, regionBytes: 4 * MIB, firstOffsetBytes: 0, name: 'corrupt' });
      expect(result.exitCode).not.toBe(0);
      expect(result.output).toMatch(/verify failed/);
    } finally {
      await corrupt.server.close();
    }
  });
});
