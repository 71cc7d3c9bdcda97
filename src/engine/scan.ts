// ARRAY lines from members' own superblocks, for `examine --scan` (as mdadm --examine --scan):
// members are grouped by array uuid, and the newest superblock of each array (most events)
// decides which of them are still in it.

import { resolve } from 'node:path';
import { FileDevice } from '../device/file-device.js';
import { probeMember, requireMemberPath } from '../device/member-path.js';
import { JraidError, isJraidError } from '../errors.js';
import { isFreeSlot, type Superblock } from '../format/superblock.js';
import { formatUuid } from '../format/uuid.js';
import { readSuperblocks } from './superblock-io.js';

export interface ScannedArray {
  name: string;
  uuid: string;
  level: number;
  raidDevices: number;
  /** Members found that the newest superblock lists as active, rebuilding or spare (absolute paths). */
  devices: string[];
  /** Members found that it lists as faulty, or that it no longer lists. */
  leftOut: string[];
}

export interface ScanResult {
  arrays: ScannedArray[];
  errors: JraidError[];
}

export async function scanMembers(paths: string[]): Promise<ScanResult> {
  const found: { path: string; sb: Superblock }[] = [];
  const errors: JraidError[] = [];
  for (const path of paths) {
    try {
      requireMemberPath(await probeMember(path));
      const device = await FileDevice.open(path, { readOnly: true });
      const sb = (await readSuperblocks(device).finally(() => device.close())).superblock;
      if (!sb) throw new JraidError('E_MEMBER_NOT_JRAID', `${path} carries no readable jraid superblock`, { path, hint: 'jraid examine shows what it carries' });
      found.push({ path: resolve(path), sb });
    } catch (error) {
      if (!isJraidError(error)) throw error;
      errors.push(error);
    }
  }
  const byUuid = new Map<string, { path: string; sb: Superblock }[]>();
  for (const entry of found) {
    const uuid = formatUuid(entry.sb.arrayUuid);
    byUuid.set(uuid, [...(byUuid.get(uuid) ?? []), entry]);
  }
  const arrays: ScannedArray[] = [];
  for (const [uuid, members] of byUuid) {
    const newest = members.reduce((best, entry) => (entry.sb.events > best.sb.events ? entry : best)).sb;
    const inArray = (entry: { sb: Superblock }) => {
      const row = newest.members.find((member) => member.uuid.equals(entry.sb.memberUuid));
      return row !== undefined && !isFreeSlot(row) && row.state !== 'faulty';
    };
    arrays.push({
      name: newest.name, uuid, level: newest.level, raidDevices: newest.raidDevices,
      devices: members.filter(inArray).map((entry) => entry.path),
      leftOut: members.filter((entry) => !inArray(entry)).map((entry) => entry.path),
    });
  }
  return { arrays, errors };
}
