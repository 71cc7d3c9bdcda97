// The member layout: one declared table of regions, checked for alignment and overlap
// where it is built. Everything jraid writes on a member lands inside one of these.

import { BLOCK_SIZE_BYTES, KIB, MIB, alignDown, assert } from '../units.js';
import type { RegionKind } from './types.js';

export interface Region {
  kind: RegionKind;
  offsetBytes: number;
  sizeBytes: number;
}

export const SUPERBLOCK_SIZE_BYTES = 4 * KIB;
export const WRITE_INTENT_REGION_BYTES = 128 * KIB;

/** Fixed zones, in on-disk order. The data area starts at 4 MiB, aligned for any device. */
const FIXED_ZONES: readonly Region[] = [
  { kind: 'superblock-primary', offsetBytes: 0, sizeBytes: SUPERBLOCK_SIZE_BYTES },
  { kind: 'superblock-secondary', offsetBytes: 4 * KIB, sizeBytes: SUPERBLOCK_SIZE_BYTES },
  { kind: 'bad-blocks', offsetBytes: 64 * KIB, sizeBytes: 64 * KIB },
  { kind: 'write-intent', offsetBytes: 128 * KIB, sizeBytes: WRITE_INTENT_REGION_BYTES },
  { kind: 'journal', offsetBytes: 256 * KIB, sizeBytes: 4 * MIB - 256 * KIB },
];

export const DATA_OFFSET_BYTES = 4 * MIB;

/** The journal policy's data journal per member, unless create is given --journal-size. */
export const DATA_JOURNAL_DEFAULT_BYTES = 16 * MIB;
/** The smallest data journal: its entry area and room for a few writes' blocks. */
export const DATA_JOURNAL_MIN_BYTES = 256 * KIB;

/**
 * The member layout. `dataJournalBytes` > 0 (the journal policy) puts a data-journal region at
 * the end of the member, after the data region, so the data area still starts at 4 MiB.
 */
export function buildMemberLayout(memberSizeBytes: number, dataJournalBytes = 0): Region[] {
  assert(dataJournalBytes === 0 || (dataJournalBytes >= DATA_JOURNAL_MIN_BYTES && dataJournalBytes % BLOCK_SIZE_BYTES === 0), 'data journal size checked by caller');
  const usableEndBytes = alignDown(memberSizeBytes, BLOCK_SIZE_BYTES);
  const dataSizeBytes = usableEndBytes - dataJournalBytes - DATA_OFFSET_BYTES;
  assert(dataSizeBytes > 0, 'member too small for a data region (checked by caller)');
  const regions: Region[] = [...FIXED_ZONES, { kind: 'data' as const, offsetBytes: DATA_OFFSET_BYTES, sizeBytes: dataSizeBytes }];
  if (dataJournalBytes > 0) regions.push({ kind: 'data-journal', offsetBytes: usableEndBytes - dataJournalBytes, sizeBytes: dataJournalBytes });
  const problem = checkRegions(regions, memberSizeBytes);
  assert(problem === undefined, `member layout: ${problem}`);
  return regions;
}

/** Returns why a region table is unusable, or undefined. Used on our own tables and on disk. */
export function checkRegions(regions: readonly Region[], memberSizeBytes: number): string | undefined {
  const sorted = [...regions].sort((a, b) => a.offsetBytes - b.offsetBytes);
  let endBytes = 0;
  for (const region of sorted) {
    if (region.offsetBytes % BLOCK_SIZE_BYTES !== 0 || region.sizeBytes % BLOCK_SIZE_BYTES !== 0) {
      return `region ${region.kind} is not aligned to ${BLOCK_SIZE_BYTES} bytes`;
    }
    if (region.sizeBytes <= 0) return `region ${region.kind} is empty`;
    if (region.offsetBytes < endBytes) return `region ${region.kind} overlaps the region before it`;
    endBytes = region.offsetBytes + region.sizeBytes;
    if (endBytes > memberSizeBytes) return `region ${region.kind} ends past the member (${endBytes} > ${memberSizeBytes})`;
  }
  for (const kind of ['superblock-primary', 'superblock-secondary', 'data'] as const) {
    if (!regions.some((region) => region.kind === kind)) return `region table has no ${kind} region`;
  }
  const kinds = new Set(regions.map((region) => region.kind));
  if (kinds.size !== regions.length) return 'region table lists a kind twice';
  return undefined;
}

export function findRegion(regions: readonly Region[], kind: RegionKind): Region | undefined {
  return regions.find((region) => region.kind === kind);
}

/** The smallest member that holds the fixed zones, one chunk of data and any data journal. */
export function minMemberSizeBytes(chunkSizeBytes: number, dataJournalBytes = 0): number {
  return DATA_OFFSET_BYTES + chunkSizeBytes + dataJournalBytes;
}

/** Where a member's regions end: a replacement member must be at least this large. */
export function regionsEndBytes(regions: readonly Region[]): number {
  return Math.max(...regions.map((region) => region.offsetBytes + region.sizeBytes));
}
