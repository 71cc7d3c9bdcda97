// Drives the WebAssembly SIMD kernels of kernels.wat (built to kernels.wasm beside this
// module's JavaScript in dist/). Operands that are views of the arena's pool are handed to the
// kernels in place; any other operand (an ordinary Buffer) is staged through a scratch area in
// the arena in slices, and so is any tail shorter than the kernels' 64-byte step. Either way the
// result is the same bytes: the kernels are byte-wise, so a range may be cut anywhere. Outputs
// get what reading every input first gives, even where an output overlaps an input.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Arena, defaultArena } from '../memory/arena.js';
import { assert, KIB } from '../units.js';
import { gfMul } from './gf256.js';

/** Entries a kernel's source table holds: Q has 255 distinct coefficients g^0..g^254. */
export const KERNEL_SOURCES_MAX = 255;
/** Bytes the kernels handle per loop iteration; their lengths are multiples of it. */
export const KERNEL_STEP_BYTES = 64;
/** Scratch for staged operands: at least KERNEL_STEP_BYTES for every operand of a call. */
export const KERNEL_SCRATCH_BYTES = 1024 * KIB;
/** Largest piece of one operand staged at a time, so a call's staged pieces stay in L2. */
export const KERNEL_STAGE_SLICE_BYTES_MAX = 64 * KIB;
/** Operands of one call: the source table plus at most four others (recov_pq's P, Q, Dx, Dy). */
const OPERANDS_MAX = KERNEL_SOURCES_MAX + 4;

// The control block, lent once from the arena's pool: the source table, then the nibble
// tables of every constant (lo[x] = c*x, hi[x] = c*(x << 4), 16 bytes each).
const CONTROL_TABLE_OFFSET_BYTES = 0;
const CONTROL_NIBBLES_OFFSET_BYTES = 1 * KIB;
const NIBBLE_TABLES_BYTES = 32;
const CONTROL_BYTES = CONTROL_NIBBLES_OFFSET_BYTES + 256 * NIBBLE_TABLES_BYTES;
/** kernels.wat's BLOCK_BYTES: its work area is three blocks (zeros, then P and Q partial sums). */
const KERNEL_BLOCK_BYTES = 16 * KIB;
const WORK_BYTES = 3 * KERNEL_BLOCK_BYTES;

const IN = 0;
const OUT = 1;
const IN_OUT = 2;
type Role = typeof IN | typeof OUT | typeof IN_OUT;

const XOR = 0;
const PQ = 1;
const Q = 2;
const MUL_XOR = 3;
const RECOV_Q = 4;
const RECOV_PQ = 5;
type Kind = typeof XOR | typeof PQ | typeof Q | typeof MUL_XOR | typeof RECOV_Q | typeof RECOV_PQ;

/** kernels.wat's exports (see its header for the conventions). */
interface KernelExports {
  xor_gen(tbl: number, n: number, dst: number, len: number, work: number): void;
  /** p = 0: Q alone. */
  pq_gen(tbl: number, n: number, p: number, q: number, len: number, work: number): void;
  mul_xor(dst: number, src: number, len: number, tabs: number): void;
  recov_q(tbl: number, n: number, q: number, dx: number, len: number, tabs: number, work: number): void;
  recov_pq(tbl: number, n: number, p: number, q: number, dx: number, dy: number, len: number, ta: number, tb: number, work: number): void;
}

/** A kernel's source table: entry i has Q coefficient g^i; null is a chunk of zeros. */
export type SourceTable = readonly (Uint8Array | null)[];

let compiled: WebAssembly.Module | undefined;

/**
 * kernels.wasm in dist/src/parity/: named from a sibling directory so the path holds from this
 * module and from the command line's bundle (dist/src/cli/jraid.mjs) alike; when running from
 * TypeScript sources (tests), in dist/.
 */
function kernelsModule(): WebAssembly.Module {
  if (compiled) return compiled;
  const candidates = [new URL('../parity/kernels.wasm', import.meta.url)];
  if (import.meta.url.endsWith('.ts')) candidates.push(new URL('../../dist/src/parity/kernels.wasm', import.meta.url));
  const found = candidates.find((url) => existsSync(url));
  assert(found, `parity kernels built at ${candidates.map((url) => fileURLToPath(url)).join(' or ')} (run npm run build)`);
  compiled = new WebAssembly.Module(readFileSync(found));
  return compiled;
}

export class WasmKernels {
  readonly #exports: KernelExports;
  readonly #memory: Uint8Array;
  readonly #tableAddress: number;
  readonly #table: Int32Array;
  readonly #nibblesAddress: number;
  readonly #scratchAddress: number;
  readonly #workAddress: number;
  readonly #bytes: ArrayBuffer;
  readonly #poolStartBytes: number;
  readonly #poolEndBytes: number;
  // One call's operands and their properties, reused from call to call.
  readonly #operands: (Uint8Array | null)[] = new Array<Uint8Array | null>(OPERANDS_MAX).fill(null);
  readonly #buffers: (ArrayBufferLike | null)[] = new Array<ArrayBufferLike | null>(OPERANDS_MAX).fill(null);
  readonly #offsets = new Float64Array(OPERANDS_MAX);
  readonly #roles = new Uint8Array(OPERANDS_MAX);
  readonly #pooled = new Uint8Array(OPERANDS_MAX);
  readonly #inPlace = new Uint8Array(OPERANDS_MAX);
  readonly #addresses = new Float64Array(OPERANDS_MAX);
  #constantA = 0;
  #constantB = 0;
  #stagedBytes = 0;

  constructor(arena: Arena, module: WebAssembly.Module) {
    this.#exports = arena.instantiate(module).exports as unknown as KernelExports;
    this.#bytes = arena.bytes;
    this.#memory = new Uint8Array(this.#bytes);
    this.#poolStartBytes = arena.pool.regionOffsetBytes;
    this.#poolEndBytes = arena.pool.regionOffsetBytes + arena.pool.capacityBytes;
    const control = arena.pool.acquire(CONTROL_BYTES);
    const scratch = arena.pool.acquire(KERNEL_SCRATCH_BYTES);
    // The kernels never write the work area's first block: it must read as zeros for ever.
    const work = arena.pool.acquire(WORK_BYTES).fill(0);
    this.#workAddress = work.byteOffset;
    this.#tableAddress = control.byteOffset + CONTROL_TABLE_OFFSET_BYTES;
    this.#table = new Int32Array(arena.bytes, this.#tableAddress, KERNEL_SOURCES_MAX);
    this.#nibblesAddress = control.byteOffset + CONTROL_NIBBLES_OFFSET_BYTES;
    this.#scratchAddress = scratch.byteOffset;
    assert(KERNEL_SCRATCH_BYTES >= OPERANDS_MAX * KERNEL_STEP_BYTES, 'scratch holds one step of every operand');
    for (let c = 0; c < 256; c++) {
      for (let x = 0; x < 16; x++) {
        this.#memory[this.#nibblesAddress + c * NIBBLE_TABLES_BYTES + x] = gfMul(c, x);
        this.#memory[this.#nibblesAddress + c * NIBBLE_TABLES_BYTES + 16 + x] = gfMul(c, x << 4);
      }
    }
  }

  /** Bytes copied into and out of the scratch area so far: zero growth means in place. */
  get stagedBytes(): number {
    return this.#stagedBytes;
  }

  /** dst = sources[0] ^ sources[1] ^ ...; dst may be one of the sources. */
  xor(sources: readonly Uint8Array[], dst: Uint8Array): void {
    if (sources.length < 1 || sources.length > KERNEL_SOURCES_MAX) assert(false, `xor of 1..${KERNEL_SOURCES_MAX} sources (${sources.length})`);
    const n = this.#setSources(sources, dst.length, false);
    this.#set(n, dst, OUT, dst.length);
    this.#run(XOR, n, n + 1, dst.length);
  }

  /** p = sum of table[i], q = sum of g^i * table[i], in one pass. */
  pq(table: SourceTable, p: Uint8Array, q: Uint8Array): void {
    const n = this.#setSources(table, p.length, true);
    this.#set(n, p, OUT, p.length);
    this.#set(n + 1, q, OUT, p.length);
    this.#run(PQ, n, n + 2, p.length);
  }

  /** q = sum of g^i * table[i]. */
  q(table: SourceTable, q: Uint8Array): void {
    const n = this.#setSources(table, q.length, true);
    this.#set(n, q, OUT, q.length);
    this.#run(Q, n, n + 1, q.length);
  }

  /** dst ^= c * src in GF(2^8). */
  mulXor(dst: Uint8Array, src: Uint8Array, c: number): void {
    this.#constantA = constant(c);
    this.#set(0, dst, IN_OUT, dst.length);
    this.#set(1, src, IN, dst.length);
    this.#run(MUL_XOR, 0, 2, dst.length);
  }

  /** dst = c * (q ^ sum of g^i * table[i]): a lost data chunk from Q (its entry null), c = g^-x. */
  recoverFromQ(table: SourceTable, q: Uint8Array, dst: Uint8Array, c: number): void {
    this.#constantA = constant(c);
    const n = this.#setSources(table, dst.length, true);
    this.#set(n, q, IN, dst.length);
    this.#set(n + 1, dst, OUT, dst.length);
    this.#run(RECOV_Q, n, n + 2, dst.length);
  }

  /**
   * Two lost data chunks (their entries null): with Pxy = p ^ sum table[i] and
   * Qxy = q ^ sum g^i table[i], dx = a * Qxy ^ b * Pxy and dy = Pxy ^ dx.
   */
  recoverPair(table: SourceTable, p: Uint8Array, q: Uint8Array, dx: Uint8Array, dy: Uint8Array, a: number, b: number): void {
    this.#constantA = constant(a);
    this.#constantB = constant(b);
    const n = this.#setSources(table, dx.length, true);
    this.#set(n, p, IN, dx.length);
    this.#set(n + 1, q, IN, dx.length);
    this.#set(n + 2, dx, OUT, dx.length);
    this.#set(n + 3, dy, OUT, dx.length);
    this.#run(RECOV_PQ, n, n + 4, dx.length);
  }

  #setSources(table: SourceTable, lengthBytes: number, nullable: boolean): number {
    const n = table.length;
    if (n < 1 || n > KERNEL_SOURCES_MAX) assert(false, `source table of 1..${KERNEL_SOURCES_MAX} entries (${n})`);
    for (let i = 0; i < n; i++) {
      const source = table[i]!;
      if (source === null && !nullable) assert(false, 'no lost chunk among xor sources');
      this.#set(i, source, IN, lengthBytes);
    }
    return n;
  }

  /** Records operand `index`, reading its properties once (these run on every call). */
  #set(index: number, operand: Uint8Array | null, role: Role, lengthBytes: number): void {
    this.#operands[index] = operand;
    this.#roles[index] = role;
    if (operand === null) {
      this.#buffers[index] = null;
      this.#pooled[index] = 0;
      return;
    }
    // Messages are built only on failure.
    if (operand.length !== lengthBytes) assert(false, `parity operands of equal length (${operand.length} and ${lengthBytes})`);
    const buffer = operand.buffer;
    const offsetBytes = operand.byteOffset;
    this.#buffers[index] = buffer;
    this.#offsets[index] = offsetBytes;
    this.#pooled[index] = buffer === this.#bytes && offsetBytes >= this.#poolStartBytes &&
      offsetBytes + lengthBytes <= this.#poolEndBytes ? 1 : 0;
  }

  #run(kind: Kind, n: number, count: number, lengthBytes: number): void {
    this.#separateOutputs(count, lengthBytes);
    let allPooled = lengthBytes % KERNEL_STEP_BYTES === 0;
    for (let i = 0; i < count && allPooled; i++) allPooled = this.#operands[i] === null || this.#pooled[i] === 1;
    if (allPooled) {
      // Every operand in the pool: one call, in place.
      for (let i = 0; i < count; i++) this.#addresses[i] = this.#operands[i] === null ? 0 : this.#offsets[i]!;
      this.#invoke(kind, n, lengthBytes);
    } else {
      const mainBytes = lengthBytes - (lengthBytes % KERNEL_STEP_BYTES);
      if (mainBytes > 0) this.#runRange(kind, n, count, 0, mainBytes, false);
      if (mainBytes < lengthBytes) this.#runRange(kind, n, count, mainBytes, lengthBytes, true);
    }
    this.#operands.fill(null, 0, count); // hold no caller's buffer past the call
    this.#buffers.fill(null, 0, count);
  }

  /**
   * Outputs must not share bytes with each other (one of them would end up wrong). An input
   * may be exactly an output (the kernels read every lane of every source before storing it);
   * one that overlaps an output in part is read whole first, since a slice of it staged later,
   * or read in place, could already be overwritten.
   */
  #separateOutputs(count: number, lengthBytes: number): void {
    for (let i = 0; i < count; i++) {
      if (this.#roles[i] === IN || this.#operands[i] === null) continue;
      for (let j = 0; j < count; j++) {
        if (j === i || this.#operands[j] === null || this.#buffers[j] !== this.#buffers[i]) continue;
        const apartBytes = Math.abs(this.#offsets[j]! - this.#offsets[i]!);
        if (apartBytes >= lengthBytes || lengthBytes === 0) continue;
        if (this.#roles[j] !== IN) assert(false, 'parity outputs do not overlap');
        if (apartBytes === 0) continue;
        const copy = new Uint8Array(this.#operands[j]!);
        this.#operands[j] = copy;
        this.#buffers[j] = copy.buffer;
        this.#offsets[j] = copy.byteOffset;
        this.#pooled[j] = 0;
      }
    }
  }

  /** Runs [startBytes, endBytes) of a call; `tail` when shorter than one step (all staged). */
  #runRange(kind: Kind, n: number, count: number, startBytes: number, endBytes: number, tail: boolean): void {
    const operands = this.#operands;
    let staged = 0;
    for (let i = 0; i < count; i++) {
      const inPlace = operands[i] !== null && !tail && this.#pooled[i] === 1;
      this.#inPlace[i] = inPlace ? 1 : 0;
      if (operands[i] !== null && !inPlace) staged++;
    }
    const strideBytes = tail ? KERNEL_STEP_BYTES
      : staged === 0 ? endBytes - startBytes
      : Math.min(KERNEL_STAGE_SLICE_BYTES_MAX, alignDownToStep(KERNEL_SCRATCH_BYTES / staged));
    for (let at = startBytes; at < endBytes; at += strideBytes) {
      const pieceBytes = Math.min(strideBytes, endBytes - at);
      let slot = this.#scratchAddress;
      for (let i = 0; i < count; i++) {
        const operand = operands[i]!;
        if (operand === null) {
          this.#addresses[i] = 0;
        } else if (this.#inPlace[i]) {
          this.#addresses[i] = this.#offsets[i]! + at;
        } else {
          this.#addresses[i] = slot;
          if (this.#roles[i] !== OUT) {
            this.#memory.set(operand.subarray(at, at + pieceBytes), slot);
            this.#stagedBytes += pieceBytes;
          }
          slot += strideBytes;
        }
      }
      this.#invoke(kind, n, pieceBytes + ((KERNEL_STEP_BYTES - (pieceBytes % KERNEL_STEP_BYTES)) % KERNEL_STEP_BYTES));
      for (let i = 0; i < count; i++) {
        const operand = operands[i]!;
        if (operand === null || this.#inPlace[i] || this.#roles[i] === IN) continue;
        const address = this.#addresses[i]!;
        operand.set(this.#memory.subarray(address, address + pieceBytes), at);
        this.#stagedBytes += pieceBytes;
      }
    }
  }

  #invoke(kind: Kind, n: number, lengthBytes: number): void {
    const a = this.#addresses;
    for (let i = 0; i < n; i++) this.#table[i] = a[i]!;
    const k = this.#exports;
    const table = this.#tableAddress;
    const work = this.#workAddress;
    switch (kind) {
      case XOR: return k.xor_gen(table, n, a[n]!, lengthBytes, work);
      case PQ: return k.pq_gen(table, n, a[n]!, a[n + 1]!, lengthBytes, work);
      case Q: return k.pq_gen(table, n, 0, a[n]!, lengthBytes, work);
      case MUL_XOR: return k.mul_xor(a[0]!, a[1]!, lengthBytes, this.#nibbles(this.#constantA));
      case RECOV_Q: return k.recov_q(table, n, a[n]!, a[n + 1]!, lengthBytes, this.#nibbles(this.#constantA), work);
      case RECOV_PQ: return k.recov_pq(table, n, a[n]!, a[n + 1]!, a[n + 2]!, a[n + 3]!, lengthBytes,
        this.#nibbles(this.#constantA), this.#nibbles(this.#constantB), work);
    }
  }

  #nibbles(c: number): number {
    return this.#nibblesAddress + c * NIBBLE_TABLES_BYTES;
  }
}

function constant(c: number): number {
  if (!Number.isInteger(c) || c < 0 || c >= 256) assert(false, `GF(2^8) constant ${c} in 0..255`);
  return c;
}

function alignDownToStep(bytes: number): number {
  return Math.floor(bytes / KERNEL_STEP_BYTES) * KERNEL_STEP_BYTES;
}

let defaultKernelsInstance: WasmKernels | undefined;

/** The kernels on the process-wide arena: pooled buffers from defaultArena() run in place. */
export function defaultKernels(): WasmKernels {
  defaultKernelsInstance ??= new WasmKernels(defaultArena(), kernelsModule());
  return defaultKernelsInstance;
}

/** Kernels on another arena (tests): that arena's pooled buffers run in place. */
export function kernelsOn(arena: Arena): WasmKernels {
  return new WasmKernels(arena, kernelsModule());
}
