// zero-superblock: erase jraid's metadata (both superblock copies, the bad-block list, the
// write-intent bitmap and the journal region) so a member can be reused, as mdadm
// --zero-superblock does. Every member named is checked and locked before any is written, so a
// refusal leaves all of them as they were. The data area is left alone.

import { resolve } from 'node:path';
import type { BlockDevice } from '../device/block-device.js';
import { FileDevice } from '../device/file-device.js';
import { probeMember, requireMemberPath } from '../device/member-path.js';
import { openMemberDevice } from '../device/open-member.js';
import { JraidError } from '../errors.js';
import { DATA_OFFSET_BYTES } from '../format/layout.js';
import { formatUuid } from '../format/uuid.js';
import { assert } from '../units.js';
import { lockAll, type LockedMembers } from './member-locks.js';
import { readSuperblocks } from './superblock-io.js';

/** One write of zeroes at most this large, so a 4 MiB metadata area does not need 4 MiB at once twice. */
const ZERO_WRITE_BYTES_MAX = 1024 * 1024;

export interface ZeroedMember {
  path: string;
  /** The array it belonged to (null when both superblock copies were unreadable, only the magic left). */
  uuid: string | null;
  name: string | null;
  bytesZeroed: number;
}

export interface ZeroSuperblockOptions {
  /** Asked for each array uuid found: the daemon serving it (pid), if any. */
  servedBy?: (uuid: string) => Promise<number | undefined>;
}

interface Planned { path: string; device: BlockDevice; uuid: string | null; name: string | null }

export async function zeroSuperblocks(paths: string[], options: ZeroSuperblockOptions = {}): Promise<ZeroedMember[]> {
  if (paths.length === 0) throw new JraidError('E_USAGE', 'no members given', { hint: 'jraid zero-superblock MEMBER...' });
  const planned: Planned[] = [];
  let locks: LockedMembers | undefined;
  try {
    const identities = new Map<string, string>();
    for (const path of paths) {
      const probe = await probeMember(path);
      requireMemberPath(probe);
      const twin = identities.get(probe.identity);
      if (twin !== undefined) throw new JraidError('E_MEMBER_DUPLICATE', `${path} and ${twin} are the same member`, { path, hint: 'list each member once' });
      identities.set(probe.identity, path);
      // Looked at read-only first: a member a daemon holds is named as such, not as "busy".
      const looking = await FileDevice.open(path, { readOnly: true });
      const read = await readSuperblocks(looking).finally(() => looking.close());
      if (!read.superblock && !read.hasMagic) {
        throw new JraidError('E_MEMBER_NOT_JRAID', `${path} carries no jraid superblock: nothing to erase`, { path, hint: 'check the path; jraid examine shows what a member carries' });
      }
      if (probe.sizeBytes < DATA_OFFSET_BYTES) {
        throw new JraidError('E_MEMBER_TOO_SMALL', `${path} is ${probe.sizeBytes} bytes, smaller than jraid's metadata area (${DATA_OFFSET_BYTES})`, { path, hint: 'it cannot hold a jraid member: overwrite it by other means' });
      }
      const sb = read.superblock;
      const uuid = sb ? formatUuid(sb.arrayUuid) : null;
      const pid = uuid ? await options.servedBy?.(uuid) : undefined;
      if (pid !== undefined) {
        throw new JraidError('E_ARRAY_LOCKED', `${path} is a member of array ${sb!.name || uuid}, which daemon ${pid} serves`, {
          path, hint: `stop the daemon first with jraid stop ${sb!.name || uuid}, or take the member out of the array with jraid fail-disk and jraid remove`,
        });
      }
      const device = await openMemberDevice(path, { exclusive: true });
      planned.push({ path, device, uuid, name: sb ? sb.name : null });
    }
    // The array lock: a command holding the array (a rebuild, a write) keeps its members.
    locks = await lockAll(planned.map((entry) => entry.device), 'exclusive');
    const zeroed: ZeroedMember[] = [];
    for (const entry of planned) {
      await zeroMetadata(entry.device);
      zeroed.push({ path: resolve(entry.path), uuid: entry.uuid, name: entry.name, bytesZeroed: DATA_OFFSET_BYTES });
    }
    return zeroed;
  } finally {
    locks?.release();
    for (const entry of planned) await entry.device.close().catch(() => {});
  }
}

/** Zeroes every byte before the data area, then makes it durable. */
async function zeroMetadata(device: BlockDevice): Promise<void> {
  assert(device.sizeBytes >= DATA_OFFSET_BYTES, 'member holds the metadata area (checked before)');
  const zeroes = Buffer.alloc(ZERO_WRITE_BYTES_MAX);
  for (let offsetBytes = 0; offsetBytes < DATA_OFFSET_BYTES; offsetBytes += ZERO_WRITE_BYTES_MAX) {
    await device.write(zeroes.subarray(0, Math.min(ZERO_WRITE_BYTES_MAX, DATA_OFFSET_BYTES - offsetBytes)), offsetBytes);
  }
  await device.flush();
}
