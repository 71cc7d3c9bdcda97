// The arena: one WebAssembly memory, allocated whole when it is made and never grown, holding
// a pool of buffers. Parity kernels (src/parity/) are instantiated on this memory, so a buffer
// from the pool is an operand they read and write in place, with no copy in or out.
//
// Why never grow: growing a WebAssembly memory detaches its ArrayBuffer and with it every view
// ever made of it (every pooled Buffer would go empty). The memory is created with maximum =
// initial, is not exported, and the kernels contain no memory.grow, so the ArrayBuffer seen
// here first is the only one there ever is. Pages are committed by the OS on first touch, so
// a large arena costs address space, not resident memory, until its buffers are used.

import { assert, KIB, MIB } from '../units.js';
import { BufferPool, POOL_ALIGNMENT_BYTES, POOL_CAPACITY_BYTES_MAX } from './buffer-pool.js';

const WASM_PAGE_BYTES = 64 * KIB;
/** The first page is never lent, so address 0 can mean "no buffer" (a chunk of zeros) to the kernels. */
export const ARENA_RESERVED_BYTES = WASM_PAGE_BYTES;
/**
 * The process-wide arena's pool unless configureDefaultArena says otherwise: the bound on stripe
 * buffers in flight (a write waits for room past it, src/engine/write-path.ts), beside the NBD
 * payload budget (NBD_PAYLOAD_BYTES_MAX).
 */
export const STRIPE_BUFFER_POOL_BYTES = 16 * MIB;
export const DEFAULT_ARENA_POOL_BYTES = STRIPE_BUFFER_POOL_BYTES;

export interface ArenaOptions {
  /** Capacity of the pool: a multiple of 64 KiB, at most 2 GiB. */
  poolBytes: number;
}

export class Arena {
  readonly pool: BufferPool;
  readonly sizeBytes: number;
  readonly #memory: WebAssembly.Memory;
  readonly #bytes: ArrayBuffer;

  constructor(options: ArenaOptions) {
    const { poolBytes } = options;
    assert(Number.isSafeInteger(poolBytes) && poolBytes > 0 && poolBytes % WASM_PAGE_BYTES === 0,
      `arena pool of ${poolBytes} bytes is a positive multiple of ${WASM_PAGE_BYTES}`);
    assert(poolBytes <= POOL_CAPACITY_BYTES_MAX, `arena pool of ${poolBytes} bytes at most ${POOL_CAPACITY_BYTES_MAX}`);
    this.sizeBytes = ARENA_RESERVED_BYTES + poolBytes;
    const pages = this.sizeBytes / WASM_PAGE_BYTES;
    this.#memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.#bytes = this.#memory.buffer;
    assert(ARENA_RESERVED_BYTES % POOL_ALIGNMENT_BYTES === 0, 'pool starts on an aligned offset');
    this.pool = new BufferPool({ bytes: this.#bytes, offsetBytes: ARENA_RESERVED_BYTES, sizeBytes: poolBytes });
  }

  /** The memory's one ArrayBuffer: an operand is in the arena when its `.buffer` is this. */
  get bytes(): ArrayBuffer {
    // Cheap proof of the invariant above; if it ever fails, every pooled view is stale.
    assert(this.#memory.buffer === this.#bytes, 'arena memory never grows');
    return this.#bytes;
  }

  /** True when `view` is a view of this arena's memory (its byteOffset is then its address). */
  holds(view: ArrayBufferView): boolean {
    return view.buffer === this.#bytes;
  }

  /** Instantiates a module that imports this memory as env.memory (and nothing else). */
  instantiate(module: WebAssembly.Module): WebAssembly.Instance {
    return new WebAssembly.Instance(module, { env: { memory: this.#memory } });
  }
}

let defaultArenaInstance: Arena | undefined;
let defaultArenaOptions: ArenaOptions = { poolBytes: DEFAULT_ARENA_POOL_BYTES };

/**
 * Sets the size of the process-wide arena; only before its first use (a daemon does it at
 * start-up, from its configured bounds).
 */
export function configureDefaultArena(options: ArenaOptions): void {
  assert(!defaultArenaInstance, 'the default arena is configured before its first use');
  defaultArenaOptions = { ...options };
}

/** The process-wide arena, made on first use: the parity kernels and the engine's buffers share it. */
export function defaultArena(): Arena {
  defaultArenaInstance ??= new Arena(defaultArenaOptions);
  return defaultArenaInstance;
}
