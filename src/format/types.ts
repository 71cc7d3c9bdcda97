// The vocabulary stored on disk: levels, layouts, policies, member states, region kinds.
// Each has a numeric id that is part of the format (docs/FORMAT.md); ids never change meaning.

export type Level = 4 | 5 | 6;
export const LEVELS: readonly Level[] = [4, 5, 6];

export type LayoutName =
  | 'parity-last'
  | 'left-symmetric'
  | 'left-asymmetric'
  | 'right-symmetric'
  | 'right-asymmetric';

interface LayoutInfo {
  id: number;
  name: LayoutName;
  levels: readonly Level[];
}

export const LAYOUTS: readonly LayoutInfo[] = [
  { id: 1, name: 'parity-last', levels: [4] },
  { id: 2, name: 'left-symmetric', levels: [5, 6] },
  { id: 3, name: 'left-asymmetric', levels: [5, 6] },
  { id: 4, name: 'right-symmetric', levels: [5, 6] },
  { id: 5, name: 'right-asymmetric', levels: [5, 6] },
];

/** md's defaults: RAID-4 keeps parity on the last member, RAID-5 and 6 are left-symmetric. */
export function defaultLayout(level: Level): LayoutName {
  return level === 4 ? 'parity-last' : 'left-symmetric';
}

export function layoutById(id: number): LayoutInfo | undefined {
  return LAYOUTS.find((layout) => layout.id === id);
}

export function layoutByName(name: string): LayoutInfo | undefined {
  return LAYOUTS.find((layout) => layout.name === name);
}

export type Policy = 'resync' | 'dirty-log' | 'journal';
export const POLICIES: readonly { id: number; name: Policy }[] = [
  { id: 1, name: 'resync' },
  { id: 2, name: 'dirty-log' },
  { id: 3, name: 'journal' },
];

export type MemberState = 'active' | 'faulty' | 'spare' | 'rebuilding';
export const MEMBER_STATES: readonly { id: number; name: MemberState }[] = [
  { id: 1, name: 'active' },
  { id: 2, name: 'faulty' },
  { id: 3, name: 'spare' },
  { id: 4, name: 'rebuilding' },
];

export type RegionKind =
  | 'superblock-primary'
  | 'superblock-secondary'
  | 'bad-blocks'
  | 'write-intent'
  | 'journal'
  | 'data'
  | 'data-journal';
export const REGION_KINDS: readonly { id: number; name: RegionKind }[] = [
  { id: 1, name: 'superblock-primary' },
  { id: 2, name: 'superblock-secondary' },
  { id: 3, name: 'bad-blocks' },
  { id: 4, name: 'write-intent' },
  { id: 5, name: 'journal' },
  { id: 6, name: 'data' },
  // Format 1.1: the journal policy's per-member data journal (docs/FORMAT.md, "Data-journal region").
  { id: 7, name: 'data-journal' },
];

export function parityCount(level: Level): number {
  return level === 6 ? 2 : 1;
}

/** RAID-4/5 need two data members beside parity to be more than a mirror; RAID-6 needs two. */
export function minRaidDevices(level: Level): number {
  return level === 6 ? 4 : 3;
}

export const MAX_MEMBERS = 64;
export const MIN_CHUNK_SIZE_BYTES = 4 * 1024;
export const MAX_CHUNK_SIZE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE_BYTES = 512 * 1024; // mdadm's default
