// The fault simulation's storage: members whose I/O completes only when the seeded scheduler says.
//
// SimWorld holds every submitted read, write and flush in one queue; the simulation completes
// them one at a time in a random order (reordering and latency are simulated steps, not time),
// and keeps the simulated timers (the journal's idle clean). SimDevice is a BlockDevice over
// sparse 4 KiB blocks that keeps two images: what a read sees now (every completed write) and
// what survives a power loss (writes covered by a completed flush). A crash keeps, drops or
// tears (a prefix of 512-byte sectors) each write not yet flushed. Faults are chosen by the
// simulation per device: one-shot EIO on the next read/write/flush (optionally in one region),
// latent bad sectors (reads fail until the block is written), or a member that vanished.

import { DeviceIoError, checkRange, type BlockDevice } from '../../src/device/block-device.js';
import { buildMemberLayout } from '../../src/format/layout.js';
import type { RegionKind } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import { decodeJournalRecord } from '../../src/format/journal-record.js';
import { BLOCK_SIZE_BYTES, SECTOR_SIZE_BYTES, assert } from '../../src/units.js';

export type IoKind = 'read' | 'write' | 'flush';

interface PendingIo {
  device: SimDevice;
  kind: IoKind;
  offsetBytes: number;
  buf: Uint8Array;
  /** A write made durable on its own when it completes (writeDurable, O_DSYNC): faults as a write. */
  durable?: boolean;
  /** Sequence of the last write completed on the device when this op was submitted (flush barrier). */
  writesCompletedAtSubmit: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface SimTimer {
  id: number;
  fire: () => void;
}

/** A fault armed on a device: the next matching operation fails with EIO. */
export interface ArmedFault {
  kind: IoKind;
  /** Only operations touching this region match (writes and reads); any when absent. */
  region?: RegionKind;
  /** Reported to the simulation when the fault fires. */
  label: string;
}

export class SimWorld {
  readonly rng: Rng;
  private readonly queue: PendingIo[] = [];
  private timers: SimTimer[] = [];
  private nextTimerId = 1;
  /** When true, I/O completes at once (setting up an array before the simulated run). */
  instant = false;
  /** Completed I/O operations (the simulation's clock). */
  ioCompleted = 0;
  /** Called when an armed or random fault fires: class label and device path. */
  onFault: (label: string, device: SimDevice) => void = () => {};
  /** Optional I/O trace (replay of one seed). */
  trace: ((line: string) => void) | undefined;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  get queuedIo(): number {
    return this.queue.length;
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  submit(io: PendingIo): void {
    if (this.instant) {
      this.complete(io);
      return;
    }
    this.queue.push(io);
  }

  /** Completes one queued operation, chosen at random (so operations complete out of order). */
  completeOne(): boolean {
    if (this.queue.length === 0) return false;
    const [io] = this.queue.splice(this.rng.int(this.queue.length), 1);
    this.complete(io!);
    return true;
  }

  /** Completes the newest queued operation (focused tests: the adversarial order). */
  completeNewest(): boolean {
    const io = this.queue.pop();
    if (!io) return false;
    this.complete(io);
    return true;
  }

  /** Completes the oldest queued operation that `accept` takes (focused tests script the order). */
  completeMatching(accept: (io: { device: SimDevice; kind: IoKind; offsetBytes: number }) => boolean): boolean {
    const at = this.queue.findIndex((io) => accept(io));
    if (at < 0) return false;
    const [io] = this.queue.splice(at, 1);
    this.complete(io!);
    return true;
  }

  private complete(io: PendingIo): void {
    this.ioCompleted++;
    let failure: DeviceIoError | undefined;
    try {
      failure = io.device.perform(io);
    } catch (error) {
      io.reject(error);
      return;
    }
    if (this.trace) this.trace(`io ${io.kind} ${io.device.path} @${io.offsetBytes}+${io.buf.length}${failure ? ' EIO' : ''}${describeRecord(io)}`);
    if (failure) io.reject(failure);
    else io.resolve();
  }

  /** Drops every queued operation of these devices: they crashed, nobody will hear back. */
  forget(devices: readonly SimDevice[]): void {
    const gone = new Set(devices);
    for (let i = this.queue.length - 1; i >= 0; i--) if (gone.has(this.queue[i]!.device)) this.queue.splice(i, 1);
  }

  /** The journal's timer, in simulated time: it fires when the simulation decides. */
  scheduleTimer = (fire: () => void): (() => void) => {
    const timer = { id: this.nextTimerId++, fire };
    this.timers.push(timer);
    return () => { this.timers = this.timers.filter((t) => t !== timer); };
  };

  /** Fires one pending timer (the oldest): time passes with nothing else to do. */
  fireTimer(): boolean {
    const timer = this.timers.shift();
    if (!timer) return false;
    timer.fire();
    return true;
  }

  dropTimers(): void {
    this.timers = [];
  }
}

/** A member: sparse blocks, a durable image, unflushed writes, and its faults. */
export class SimDevice implements BlockDevice {
  readonly path: string;
  readonly sizeBytes: number;
  private readonly world: SimWorld;
  /** What a read sees: every completed write. Absent blocks are zero. */
  private readonly current = new Map<number, Buffer>();
  /** What survives a power loss. */
  private readonly durable = new Map<number, Buffer>();
  /** Completed writes not yet covered by a flush, oldest first. */
  private volatile: { seq: number; offsetBytes: number; data: Buffer }[] = [];
  private writeSeq = 0;
  private readonly regions;
  /** Every operation fails: the member is gone (pulled, dead controller). */
  vanished = false;
  armed: ArmedFault[] = [];
  /** Block indexes whose reads fail until written (latent sector errors). */
  readonly latentBad = new Set<number>();
  /** Bumped whenever latentBad changes (the simulation caches on it). */
  latentVersion = 0;
  closed = false;

  constructor(world: SimWorld, path: string, sizeBytes: number) {
    this.world = world;
    this.path = path;
    this.sizeBytes = sizeBytes;
    this.regions = buildMemberLayout(sizeBytes);
  }

  regionAt(offsetBytes: number): RegionKind | undefined {
    return this.regions.find((region) => offsetBytes >= region.offsetBytes && offsetBytes < region.offsetBytes + region.sizeBytes)?.kind;
  }

  read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    return this.enqueue('read', buf, offsetBytes);
  }

  write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    // Copied now (the caller may reuse its buffer once this resolves); zeros cost nothing to keep.
    return this.enqueue('write', isZero(buf, 0, buf.length) ? zeros(buf.length) : copyOf(buf), offsetBytes);
  }

  /** A write that is on the medium once it completes; writes completed before it stay volatile. */
  writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    return this.enqueue('write', isZero(buf, 0, buf.length) ? zeros(buf.length) : copyOf(buf), offsetBytes, true);
  }

  flush(): Promise<void> {
    return this.enqueue('flush', new Uint8Array(0), 0);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private enqueue(kind: IoKind, buf: Uint8Array, offsetBytes: number, durable = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.world.submit({ device: this, kind, offsetBytes, buf, durable, writesCompletedAtSubmit: this.writeSeq, resolve, reject });
    });
  }

  /** Applies a completed operation; returns the EIO to report when a fault fires. */
  perform(io: { kind: IoKind; offsetBytes: number; buf: Uint8Array; durable?: boolean; writesCompletedAtSubmit: number }): DeviceIoError | undefined {
    assert(!this.closed || this.vanished, `I/O on closed device ${this.path}`);
    const eio = (what: string) => new DeviceIoError('EIO', this.path, io.offsetBytes, `EIO (simulated ${what}): ${io.kind} of ${this.path} at byte ${io.offsetBytes}`);
    if (this.vanished) return eio('vanished member');
    const region = io.kind === 'flush' ? undefined : this.regionAt(io.offsetBytes);
    const armed = this.armed.findIndex((fault) => fault.kind === io.kind && (fault.region === undefined || fault.region === region));
    if (armed >= 0) {
      const [fault] = this.armed.splice(armed, 1);
      this.world.onFault(fault!.label, this);
      return eio(fault!.label);
    }
    if (io.kind === 'read') {
      for (let block = Math.floor(io.offsetBytes / BLOCK_SIZE_BYTES); block * BLOCK_SIZE_BYTES < io.offsetBytes + io.buf.length; block++) {
        if (this.latentBad.has(block)) {
          this.world.onFault('latent-read-error', this);
          return eio('latent sector error');
        }
      }
      readBlocks(this.current, io.buf, io.offsetBytes);
      return undefined;
    }
    if (io.kind === 'write') {
      const data = io.buf as Buffer;
      writeBlocks(this.current, data, io.offsetBytes);
      if (io.durable) {
        // On the medium; older unflushed writes keep only the bytes it did not overwrite (a crash
        // cannot bring back what this write replaced), and stay volatile.
        writeBlocks(this.durable, data, io.offsetBytes);
        this.volatile = this.volatile.flatMap((write) => outside(write, io.offsetBytes, data.length));
      } else {
        this.volatile.push({ seq: ++this.writeSeq, offsetBytes: io.offsetBytes, data });
      }
      // A write over a bad sector remaps it, as a disk reallocates.
      for (let block = Math.floor(io.offsetBytes / BLOCK_SIZE_BYTES); block * BLOCK_SIZE_BYTES < io.offsetBytes + data.length; block++) {
        const start = block * BLOCK_SIZE_BYTES;
        if (io.offsetBytes <= start && start + BLOCK_SIZE_BYTES <= io.offsetBytes + data.length && this.latentBad.delete(block)) this.latentVersion++;
      }
      return undefined;
    }
    // A flush makes durable every write completed before it was issued.
    const covered = this.volatile.filter((write) => write.seq <= io.writesCompletedAtSubmit);
    for (const write of covered) writeBlocks(this.durable, write.data, write.offsetBytes);
    this.volatile = this.volatile.filter((write) => write.seq > io.writesCompletedAtSubmit);
    return undefined;
  }

  /**
   * Power loss: the durable image plus each unflushed write kept whole, dropped, or torn (a
   * prefix of its sectors reached the medium: a device writes a request's sectors in order);
   * or every unflushed write dropped ('drop-all') or kept ('keep-all': the process died).
   * Returns a new device in `world` holding that image; this one is left as it was.
   */
  crashImage(world: SimWorld, rng: Rng | 'drop-all' | 'keep-all', onTorn: () => void = () => {}): SimDevice {
    const image = new SimDevice(world, this.path, this.sizeBytes);
    for (const [block, bytes] of this.durable) image.durable.set(block, Buffer.from(bytes));
    for (const write of this.volatile) {
      if (rng === 'drop-all') continue;
      if (rng === 'keep-all') {
        // The process died, not the power: every completed write is in the page cache.
        writeBlocks(image.durable, write.data, write.offsetBytes);
        continue;
      }
      const roll = rng.next();
      if (roll < 0.4) continue; // dropped
      let data = write.data;
      if (roll < 0.6 && data.length > SECTOR_SIZE_BYTES) {
        data = data.subarray(0, (1 + rng.int(data.length / SECTOR_SIZE_BYTES - 1)) * SECTOR_SIZE_BYTES);
        onTorn();
      }
      writeBlocks(image.durable, data, write.offsetBytes);
    }
    for (const [block, bytes] of image.durable) image.current.set(block, Buffer.from(bytes));
    for (const block of this.latentBad) image.latentBad.add(block);
    return image;
  }

  /** The device reads as what survived (its cache lost): used when a member vanishes. */
  loseVolatile(rng: Rng | 'drop-all', onTorn: () => void = () => {}): void {
    const image = this.crashImage(this.world, rng, onTorn);
    this.current.clear();
    this.durable.clear();
    this.volatile = [];
    for (const [block, bytes] of image.durable) {
      this.durable.set(block, bytes);
      this.current.set(block, Buffer.from(bytes));
    }
  }

  /** Reads the current image directly (checks, outside the simulated I/O). */
  peek(offsetBytes: number, lengthBytes: number): Buffer {
    const out = Buffer.alloc(lengthBytes);
    readBlocks(this.current, out, offsetBytes);
    return out;
  }

  get unflushedWrites(): number {
    return this.volatile.length;
  }
}

/** For the I/O trace: what a journal record write carries (generation, clean, stripe:checks). */
function describeRecord(io: { device: SimDevice; kind: IoKind; offsetBytes: number; buf: Uint8Array }): string {
  if (io.kind !== 'write' || io.device.regionAt(io.offsetBytes) !== 'journal') return '';
  const decoded = decodeJournalRecord(Buffer.from(io.buf));
  if (!decoded.ok) return ' [journal: not a record]';
  return ` [record g${decoded.value.generation}${decoded.value.clean ? ' clean' : ''}: ${decoded.value.entries.map((entry) => `${entry.stripe}:${entry.checks.length}`).join(' ')}]`;
}

/** The parts of `write` outside [at, at + length): none, one or two pieces. */
function outside<W extends { offsetBytes: number; data: Buffer }>(write: W, at: number, length: number): W[] {
  const start = write.offsetBytes;
  const end = start + write.data.length;
  if (end <= at || at + length <= start) return [write];
  const pieces: W[] = [];
  if (start < at) pieces.push({ ...write, data: write.data.subarray(0, at - start) });
  if (at + length < end) pieces.push({ ...write, offsetBytes: at + length, data: write.data.subarray(at + length - start) });
  return pieces;
}

function readBlocks(blocks: Map<number, Buffer>, buf: Uint8Array, offsetBytes: number): void {
  forEachBlockPiece(offsetBytes, buf.length, (index, within, done, piece) => {
    const block = blocks.get(index);
    if (block) buf.set(block.subarray(within, within + piece), done);
    else buf.fill(0, done, done + piece);
  });
}

function writeBlocks(blocks: Map<number, Buffer>, data: Uint8Array, offsetBytes: number): void {
  forEachBlockPiece(offsetBytes, data.length, (index, within, done, piece) => {
    let block = blocks.get(index);
    if (!block) {
      if (isZero(data, done, piece)) return;
      block = Buffer.alloc(BLOCK_SIZE_BYTES);
      blocks.set(index, block);
    }
    block.set(data.subarray(done, done + piece), within);
  });
}

function copyOf(buf: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafe(buf.length);
  copy.set(buf);
  return copy;
}

/** One shared, never written, zero buffer (grown as needed). */
let zeroBuffer = Buffer.alloc(64 * 1024);

function zeros(length: number): Buffer {
  if (zeroBuffer.length < length) zeroBuffer = Buffer.alloc(length);
  return zeroBuffer.subarray(0, length);
}

function isZero(data: Uint8Array, from: number, length: number): boolean {
  return Buffer.compare(data.subarray(from, from + length), zeros(length)) === 0;
}

function forEachBlockPiece(offsetBytes: number, lengthBytes: number, fn: (index: number, within: number, done: number, piece: number) => void): void {
  let done = 0;
  while (done < lengthBytes) {
    const at = offsetBytes + done;
    const index = Math.floor(at / BLOCK_SIZE_BYTES);
    const within = at - index * BLOCK_SIZE_BYTES;
    const piece = Math.min(lengthBytes - done, BLOCK_SIZE_BYTES - within);
    fn(index, within, done, piece);
    done += piece;
  }
}
