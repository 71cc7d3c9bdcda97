// Level + layout: where each chunk of a stripe lives. Pure arithmetic, no I/O.
//
// A stripe is one chunk on every raid device. Within a stripe, data chunks are numbered
// 0..dataDisks-1 in array order; P (and Q on RAID-6) sit on the members the layout picks.
// RAID-6 Q is computed with coefficient g^i for data chunk i, as Linux md does.

import { BLOCK_SIZE_BYTES, assert, assertNever } from '../units.js';
import { parityCount, type LayoutName, type Level } from '../format/types.js';

export interface GeometryParams {
  level: Level;
  layout: LayoutName;
  raidDevices: number;
  chunkSizeBytes: number;
  /** Per-member bytes that hold stripes (a whole number of chunks). */
  dataSizeBytes: number;
}

export interface StripeMap {
  /** Member role holding data chunk i of the stripe. */
  dataRoles: number[];
  pRole: number;
  /** -1 when the level has no Q. */
  qRole: number;
  /**
   * Q coefficient exponent of each data chunk (Q = sum g^e(i) D_i). As Linux md: data chunks
   * are numbered from the member after Q, wrapping; for symmetric layouts that is i itself.
   */
  qExponents: number[];
}

/** One contiguous piece of an array range that falls inside one chunk. */
export interface ChunkExtent {
  stripe: number;
  dataIndex: number;
  /** Offset inside the chunk. */
  chunkOffsetBytes: number;
  lengthBytes: number;
  arrayOffsetBytes: number;
}

export class Geometry {
  readonly level: Level;
  readonly layout: LayoutName;
  readonly raidDevices: number;
  readonly chunkSizeBytes: number;
  readonly dataSizeBytes: number;
  readonly parityDisks: number;
  readonly dataDisks: number;
  readonly stripeCount: number;
  readonly stripeDataBytes: number;
  readonly arraySizeBytes: number;
  readonly blocksPerChunk: number;

  constructor(params: GeometryParams) {
    assert(params.chunkSizeBytes % BLOCK_SIZE_BYTES === 0, 'chunk is whole blocks');
    assert(params.dataSizeBytes % params.chunkSizeBytes === 0, 'data size is whole chunks');
    assert((params.layout === 'parity-last') === (params.level === 4), `layout ${params.layout} suits level ${params.level}`);
    this.level = params.level;
    this.layout = params.layout;
    this.raidDevices = params.raidDevices;
    this.chunkSizeBytes = params.chunkSizeBytes;
    this.dataSizeBytes = params.dataSizeBytes;
    this.parityDisks = parityCount(params.level);
    this.dataDisks = params.raidDevices - this.parityDisks;
    assert(this.dataDisks >= 2, 'at least two data disks');
    this.stripeCount = params.dataSizeBytes / params.chunkSizeBytes;
    this.stripeDataBytes = this.dataDisks * params.chunkSizeBytes;
    this.arraySizeBytes = this.stripeCount * this.stripeDataBytes;
    this.blocksPerChunk = params.chunkSizeBytes / BLOCK_SIZE_BYTES;
  }

  stripeMap(stripe: number): StripeMap {
    assert(stripe >= 0 && stripe < this.stripeCount, `stripe ${stripe} in range`);
    const n = this.raidDevices;
    const k = this.dataDisks;
    if (this.layout === 'parity-last') {
      return { dataRoles: range(k), pRole: n - 1, qRole: -1, qExponents: range(k) };
    }
    const rotation = stripe % n;
    const left = this.layout === 'left-symmetric' || this.layout === 'left-asymmetric';
    const symmetric = this.layout === 'left-symmetric' || this.layout === 'right-symmetric';
    const pRole = left ? n - 1 - rotation : rotation;
    const qRole = this.level === 6 ? (pRole + 1) % n : -1;
    const dataRoles: number[] = [];
    if (symmetric) {
      // Data starts right after the parity chunk(s) and wraps: md's *-symmetric.
      const first = (this.level === 6 ? qRole : pRole) + 1;
      for (let i = 0; i < k; i++) dataRoles.push((first + i) % n);
    } else {
      // Data fills the members in order, skipping parity: md's *-asymmetric.
      for (let role = 0; role < n; role++) if (role !== pRole && role !== qRole) dataRoles.push(role);
    }
    const qExponents = qRole < 0 ? range(k) : dataRoles.map((role) => {
      // Position among data members counted from the one after Q (md's raid6_idx_to_slot).
      let slot = 0;
      for (let step = 1; step < n; step++) {
        const candidate = (qRole + step) % n;
        if (candidate === role) return slot;
        if (candidate !== pRole) slot++;
      }
      return assertNever('data role found after Q');
    });
    return { dataRoles, pRole, qRole, qExponents };
  }

  /** Splits an array byte range into pieces that each fall within one chunk. */
  extents(arrayOffsetBytes: number, lengthBytes: number): ChunkExtent[] {
    assert(arrayOffsetBytes >= 0 && lengthBytes >= 0 && arrayOffsetBytes + lengthBytes <= this.arraySizeBytes, 'range within the array');
    const out: ChunkExtent[] = [];
    let offset = arrayOffsetBytes;
    const end = arrayOffsetBytes + lengthBytes;
    while (offset < end) {
      const stripe = Math.floor(offset / this.stripeDataBytes);
      const inStripe = offset - stripe * this.stripeDataBytes;
      const dataIndex = Math.floor(inStripe / this.chunkSizeBytes);
      const chunkOffsetBytes = inStripe - dataIndex * this.chunkSizeBytes;
      const piece = Math.min(end - offset, this.chunkSizeBytes - chunkOffsetBytes);
      out.push({ stripe, dataIndex, chunkOffsetBytes, lengthBytes: piece, arrayOffsetBytes: offset });
      offset += piece;
    }
    return out;
  }

  /** Offset within a member's data area of a byte of stripe `stripe` at chunk offset `chunkOffsetBytes`. */
  memberDataOffsetBytes(stripe: number, chunkOffsetBytes: number): number {
    return stripe * this.chunkSizeBytes + chunkOffsetBytes;
  }
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}
