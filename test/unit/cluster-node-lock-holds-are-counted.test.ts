// Proves: a cluster node's tasks that take another node's lock (a membership change, detail's
// probe, the dead-node watch) share it through one open file, so each hold is counted: detail
// or a takeover pass during a membership change does not let the lock go, and another process
// (a node starting with that id) stays locked out until the change ends.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createArray } from '../../src/engine/create.js';
import { assembleArray } from '../../src/engine/assemble.js';
import { ClusterNode } from '../../src/daemon/cluster.js';
import { NODE_LOCK_OFFSET_BYTES } from '../../src/device/lock.js';
import { MIB } from '../../src/units.js';

const CHILD = resolve(import.meta.dirname, '../helpers/range-lock-child.mjs');
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Asks a fresh process whether node `node`'s lock byte on `path` is free. */
function probe(path: string, node: number): Promise<string> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CHILD, path]);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const answer = out.split('\n')[1];
      if (answer) { child.kill(); done(answer); }
    });
    child.stdin.write(`try ${NODE_LOCK_OFFSET_BYTES + node} 1\n`);
  });
}

it('detail and the dead-node watch during a membership change keep the other nodes locked out', async () => {
  dir = mkdtempSync(join(tmpdir(), 'jraid-cluster-holds-'));
  const paths = ['a', 'b', 'c'].map((name) => join(dir, `${name}.img`));
  await createArray({ level: 5, raidDevices: 3, paths, createSizeBytes: 8 * MIB, chunkSizeBytes: 65536, clusterNodes: 3 });
  let node: ClusterNode | undefined;
  const assembled = await assembleArray(paths, { cluster: { node: 0, beforeRecovery: async (array) => { node = new ClusterNode(array, 0, () => {}); await node.takeNodeLock(); } } });
  try {
    expect(await probe(paths[0]!, 0)).toBe('busy');
    expect(await probe(paths[0]!, 2)).toBe('free');
    await node!.alone('rebuild', async () => {
      expect(await probe(paths[0]!, 2)).toBe('busy');
      const views = await node!.describe();
      expect(views.map((view) => view.running)).toEqual([true, false, false]);
      await node!.recoverDeadNodes();
      // Both let go of their own holds only: the change still keeps nodes 1 and 2 out.
      expect(await probe(paths[0]!, 1)).toBe('busy');
      expect(await probe(paths[0]!, 2)).toBe('busy');
    });
    expect(await probe(paths[1]!, 2)).toBe('free');
  } finally {
    await assembled.array.close();
    await assembled.release();
  }
});
