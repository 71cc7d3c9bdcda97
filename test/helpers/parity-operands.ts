// Operands for parity tests: the same bytes placed in the arena's pool (where the kernels run
// in place), in an ordinary Buffer (staged through scratch), or at an odd byteOffset in either,
// so one test drives every path of src/parity/wasm-kernels.ts.
import { defaultArena } from '../../src/memory/arena.js';

export type Placement = 'arena' | 'buffer' | 'arena-odd' | 'buffer-odd';
export const PLACEMENTS: readonly Placement[] = ['arena', 'buffer', 'arena-odd', 'buffer-odd'];

/** A byte an unwritten output would keep, so a kernel that skips bytes is caught. */
const UNWRITTEN_BYTE = 0xa5;

export class Operands {
  readonly #lent: Buffer[] = [];

  /** A copy of `bytes` placed as asked. */
  place(bytes: Uint8Array, placement: Placement): Buffer {
    const out = this.blank(bytes.length, placement);
    out.set(bytes);
    return out;
  }

  /** `lengthBytes` of UNWRITTEN_BYTE placed as asked. */
  blank(lengthBytes: number, placement: Placement): Buffer {
    const odd = placement.endsWith('-odd') ? 1 : 0;
    let backing: Buffer;
    if (placement.startsWith('arena')) {
      backing = defaultArena().pool.acquire(lengthBytes + odd);
      this.#lent.push(backing);
    } else {
      backing = Buffer.alloc(lengthBytes + odd);
    }
    return backing.subarray(odd, odd + lengthBytes).fill(UNWRITTEN_BYTE);
  }

  releaseAll(): void {
    for (const buffer of this.#lent.splice(0)) defaultArena().pool.release(buffer);
  }
}

/** A random permutation of 0..count-1 (Q exponents of a layout other than left-symmetric). */
export function shuffledExponents(count: number, next: () => number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
