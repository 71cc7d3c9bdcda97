// What the journal asks of the members it writes to. The engine's MemberDisk and RaidArray
// satisfy these interfaces as they are, so the journal layer never imports the engine: the
// engine hands itself in, the journal sees only these few calls.

import type { Superblock } from '../format/superblock.js';

/** One member's journal region: reads and writes at an offset inside it, and a barrier. */
export interface JournalMember {
  readonly path: string;
  /** Reads `buf.length` bytes at `offsetInRegionBytes` of the member's journal region. */
  readRegion(kind: 'journal', offsetInRegionBytes: number, buf: Uint8Array): Promise<void>;
  /** Writes `buf` at `offsetInRegionBytes` of the member's journal region. */
  writeRegion(kind: 'journal', offsetInRegionBytes: number, buf: Uint8Array): Promise<void>;
  /** The same, and durable on its own when it resolves: the record barrier (no other write is made durable). */
  writeRegionDurable(kind: 'journal', offsetInRegionBytes: number, buf: Uint8Array): Promise<void>;
  /** Makes every completed write on this member durable. */
  flush(): Promise<void>;
}

/** The array's members as the record store needs them: who holds which role, in which state. */
export interface JournalMemberSet<M extends JournalMember> {
  readonly sb: Pick<Superblock, 'level' | 'raidDevices' | 'regions' | 'members' | 'clusterNodes'>;
  /** Open members by member-table index. */
  readonly disks: ReadonlyMap<number, M>;
  /** The member-table index holding `role`, or -1. */
  memberIndexForRole(role: number): number;
  indexOfDisk(disk: M): number;
  /** Records the member faulty, durably, before it resolves (the store then leaves it out). */
  failMember(index: number, reason: string): Promise<void>;
  /** Makes every completed data and parity write durable on every member. */
  flushMembers(): Promise<void>;
}
