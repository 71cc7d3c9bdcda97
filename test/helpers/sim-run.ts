// The seeded whole-engine fault simulation (in the spirit of TigerBeetle's VOPR).
//
// One seed draws an array (level, members, chunk, stripes, spares, journal tuning) on SimDevices
// and a workload: concurrent writers (block-disjoint while in flight, any offset and length) and
// readers, flushes, fail-disk, rebuild onto a spare or a new replacement, re-add of a returning
// member, scrub and scrub --repair; and faults: read EIO, latent bad sectors, write or flush EIO
// on any member and in any region (data, journal record, superblock, write-intent, bad-block
// list), a member vanishing, a crash at any moment (unflushed writes dropped or torn) followed by
// reassembly and recovery (forced when jraid refuses a dirty degraded array: the blocks it names
// must then read EIO), a vanished member returning stale, and in some seeds one failure more than
// the level survives. The I/O of every member completes in an order the seed picks.
//
// Checked all along: nothing hangs (no I/O queued, no timer armed, yet an operation pending:
// simulated time, not wall time); every read returns what the shadow model allows (acknowledged
// content, old or new for what was in flight, EIO only where jraid recorded a bad block that a
// crash could have torn or forced recovery gave up), never silently wrong data; writes fail only
// with E_ARRAY_FAILED / E_IO when the faults exceed the level's redundancy for that stripe; every
// error is a JraidError (anything else, or an unhandled rejection, is an internal error). After
// every recovery, and at rest, parity computed from the member images agrees on every stripe, the
// members' superblocks match the array's state, and detail's state agrees with them.

import { DATA_OFFSET_BYTES } from '../../src/format/layout.js';
import { writeNewArray } from '../../src/engine/create.js';
import { assembleDevices, type Assembled } from '../../src/engine/assemble.js';
import type { RaidArray } from '../../src/engine/raid-array.js';
import { describeArray } from '../../src/app/describe.js';
import { enrolMember, failDisk, prepareReAdd, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { scrubArray } from '../../src/engine/scrub.js';
import type { RecoveryOutcome } from '../../src/engine/recover.js';
import { JraidError, isJraidError } from '../../src/errors.js';
import { LAYOUTS, type LayoutName, type Level, type RegionKind } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import { BLOCK_SIZE_BYTES } from '../../src/units.js';
import { defaultArena } from '../../src/memory/arena.js';
import { SimDevice, SimWorld } from './sim-device.js';
import { CANDIDATES_MAX, ShadowModel, inconsistentStripes, superblockProblems, type WriteHandle } from './sim-model.js';

export interface SimOptions {
  level: Level;
  seed: number;
  /** Workload operations to start (writes, reads, flushes, maintenance, faults, crashes). */
  operations: number;
  trace?: (line: string) => void;
  /** Trace every I/O completion too (very long). */
  traceIo?: boolean;
  /** Sabotage for the negative control: release writers before the journal record is durable. */
  unsafeSkipBarrier?: boolean;
  /** The consistency policy (default dirty-log). */
  policy?: 'dirty-log' | 'journal';
}

export interface SimResult {
  seed: number;
  level: Level;
  operations: number;
  ioCompleted: number;
  /** Faults injected (fired), by class. */
  faults: Map<string, number>;
  crashes: number;
  violations: string[];
  /** The seed ended with more members lost than the level survives (a beyond-redundancy seed). */
  arrayLost: boolean;
  /** Blocks the model stopped checking (too many possible contents after failed writes). */
  unverifiedBlocks: number;
}

/** Simulated steps one seed may take (a livelock bound). */
const STEPS_MAX = 2_000_000;
/** Operations running at once, at most (writers and readers; maintenance adds one). */
const CONCURRENT_IO_MAX = 4;

class Violation extends Error {}

interface Task {
  id: number;
  label: string;
  incarnation: number;
  done: boolean;
  /** Members on which a fault fired while the task ran (its failure may be legitimate). */
  faultedMembers: Set<SimDevice>;
  /** Whether, at any moment while the task ran, some stripe had more unreadable roles than the level rebuilds. */
  beyondSeen: boolean;
}

interface Config {
  raidDevices: number;
  spares: number;
  chunkSizeBytes: number;
  stripes: number;
  layout: LayoutName;
  cleanBatchStripes: number;
  idleCleanMs: number;
  checkpointIntervalMs: number;
  concurrency: number;
  /** This seed may lose one member more than the level survives. */
  beyond: boolean;
  crashesMax: number;
}

function drawConfig(rng: Rng, level: Level): Config {
  const layouts = LAYOUTS.filter((layout) => layout.levels.includes(level)).map((layout) => layout.name);
  return {
    raidDevices: level === 6 ? 4 + rng.int(3) : 3 + rng.int(3),
    spares: rng.int(3),
    chunkSizeBytes: BLOCK_SIZE_BYTES * rng.pick([1, 2, 4]),
    stripes: 6 + rng.int(9),
    layout: rng.pick(layouts),
    cleanBatchStripes: rng.pick([1, 2, 4, 64]),
    idleCleanMs: rng.pick([0, 3000]),
    checkpointIntervalMs: rng.pick([0, 1e12]),
    concurrency: 1 + rng.int(CONCURRENT_IO_MAX),
    beyond: rng.next() < 0.12,
    crashesMax: rng.int(4),
  };
}

export async function runSimulationSeed(options: SimOptions): Promise<SimResult> {
  const sim = new Simulation(options);
  return sim.run();
}

class Simulation {
  private readonly options: SimOptions;
  private readonly level: Level;
  private readonly rng: Rng;
  private readonly world: SimWorld;
  private readonly config: Config;
  private readonly parity: number;
  /** Physical members, in creation order (replacements appended). */
  private members: SimDevice[] = [];
  private assembled!: Assembled;
  private array!: RaidArray;
  private model!: ShadowModel;
  private incarnation = 0;
  private tasks: Task[] = [];
  private nextTaskId = 1;
  private maintenanceRunning = false;
  private steps = 0;
  private readonly violations: string[] = [];
  private readonly faults = new Map<string, number>();
  private crashes = 0;
  private operationsDone = 0;
  private arrayLost = false;
  /** Stripes a failed write may have left with parity not matching (until recovery or scrub --repair). */
  private readonly failedStripes = new Set<number>();
  /** Members not yet failed by the engine that a fault will kill (vanished, or armed with a write/flush EIO). */
  private readonly doomed = new Set<SimDevice>();
  private nextMemberNumber = 0;
  /** Devices given to rebuild as replacements: a crash may leave one blank or half-enrolled. */
  private readonly replacements = new Set<string>();
  private faultsDuringAssembly: (device: SimDevice) => boolean = () => false;
  /** Members on which a one-shot read fault fired while the last assembly (and recovery) ran. */
  private readFaultsDuringAssembly = new Set<string>();

  constructor(options: SimOptions) {
    this.options = options;
    this.level = options.level;
    this.rng = new Rng((options.seed * 2654435761 + options.level) >>> 0);
    this.world = new SimWorld((options.seed * 40503 + options.level * 7919) >>> 0);
    this.config = drawConfig(this.rng, options.level);
    this.parity = options.level === 6 ? 2 : 1;
    this.world.onFault = (label, device) => this.faultFired(label, device);
    if (options.traceIo) this.world.trace = (line) => this.trace(line);
  }

  private trace(line: string): void {
    this.options.trace?.(`[op ${this.operationsDone} io ${this.world.ioCompleted}] ${line}`);
  }

  private count(label: string): void {
    this.faults.set(label, (this.faults.get(label) ?? 0) + 1);
  }

  private violation(message: string): void {
    this.violations.push(message);
    this.trace(`VIOLATION ${message}`);
  }

  private faultFired(label: string, device: SimDevice): void {
    this.count(label);
    this.trace(`fault fired: ${label} on ${device.path}`);
    for (const task of this.tasks) if (!task.done) task.faultedMembers.add(device);
  }

  // ---- running ------------------------------------------------------------------------

  async run(): Promise<SimResult> {
    const unhandled = (reason: unknown) => this.violation(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
    process.on('unhandledRejection', unhandled);
    try {
      this.trace(`config ${JSON.stringify({ level: this.level, ...this.config })}`);
      await this.setUp();
      while (this.operationsDone < this.options.operations && this.violations.length === 0) {
        await this.nextOperation();
        const steps = this.rng.int(12);
        for (let i = 0; i < steps && this.violations.length === 0; i++) await this.step();
      }
      if (this.violations.length === 0) await this.finish();
    } catch (error) {
      if (!(error instanceof Violation)) this.violation(`simulation error: ${(error as Error)?.stack ?? String(error)}`);
    } finally {
      // Let a rejection from this seed surface while the handler is still ours.
      await new Promise((resolve) => setImmediate(resolve));
      process.off('unhandledRejection', unhandled);
    }
    return {
      seed: this.options.seed, level: this.level, operations: this.operationsDone, ioCompleted: this.world.ioCompleted,
      faults: this.faults, crashes: this.crashes, violations: this.violations, arrayLost: this.arrayLost,
      unverifiedBlocks: this.model?.unverifiedBlocks ?? 0,
    };
  }

  /** One simulated step: completes an I/O (or fires a timer); a step with nothing to do while work is pending is a hang. */
  private async step(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.steps++;
    if (this.steps > STEPS_MAX) throw this.fatal(`livelock: ${STEPS_MAX} steps without the workload finishing`);
    this.noteBeyond();
    const fireTimer = this.world.pendingTimers > 0 && (this.world.queuedIo === 0 || this.rng.next() < 0.01);
    if (fireTimer) {
      this.trace('idle timer fires');
      this.world.fireTimer();
      return;
    }
    if (this.world.completeOne()) return;
    const pending = this.tasks.filter((task) => !task.done && task.incarnation === this.incarnation);
    if (pending.length > 0) {
      throw this.fatal(`hang: ${pending.map((task) => task.label).join(', ')} pending with no I/O queued and no timer armed`);
    }
  }

  private fatal(message: string): Violation {
    this.violation(message);
    return new Violation(message);
  }

  /** Runs the simulation until `task` settles. */
  private async until(task: Task): Promise<void> {
    while (!task.done) await this.step();
  }

  private async untilIdle(): Promise<void> {
    while (this.tasks.some((task) => !task.done && task.incarnation === this.incarnation)) await this.step();
    this.tasks = this.tasks.filter((task) => !task.done && task.incarnation === this.incarnation);
  }

  /** Starts `body` as a task of the current incarnation; its errors are its own to judge. */
  private start(label: string, body: (task: Task) => Promise<void>): Task {
    const task: Task = { id: this.nextTaskId++, label, incarnation: this.incarnation, done: false, faultedMembers: new Set(), beyondSeen: this.beyondNow() };
    if (this.tasks.length > 64) this.tasks = this.tasks.filter((t) => !t.done && t.incarnation === this.incarnation);
    this.tasks.push(task);
    this.trace(`start #${task.id} ${label}`);
    void body(task).catch((error: unknown) => {
      if (error instanceof Violation) return;
      this.violation(`#${task.id} ${label}: internal error: ${(error as Error)?.stack ?? String(error)}`);
    }).finally(() => { task.done = true; });
    return task;
  }

  private get running(): Task[] {
    return this.tasks.filter((task) => !task.done && task.incarnation === this.incarnation);
  }

  // ---- set-up, crash, reassembly --------------------------------------------------------

  private newDevice(): SimDevice {
    const sizeBytes = DATA_OFFSET_BYTES + this.config.stripes * this.config.chunkSizeBytes + this.dataJournalBytes;
    return new SimDevice(this.world, `sim${this.nextMemberNumber++}`, sizeBytes);
  }

  /** The journal policy's data journal on each member (the smallest). */
  private get dataJournalBytes(): number {
    return this.options.policy === 'journal' ? 256 * 1024 : 0;
  }

  private journalOptions() {
    return {
      idleCleanMs: this.config.idleCleanMs,
      scheduleTimer: this.world.scheduleTimer,
      cleanBatchStripes: this.config.cleanBatchStripes,
      unsafeSkipBarrier: this.options.unsafeSkipBarrier,
    };
  }

  private async setUp(): Promise<void> {
    const count = this.config.raidDevices + this.config.spares;
    this.members = Array.from({ length: count }, () => this.newDevice());
    this.world.instant = true;
    await writeNewArray(this.members, {
      level: this.level, layout: this.config.layout, chunkSizeBytes: this.config.chunkSizeBytes, policy: this.options.policy ?? 'dirty-log', dataJournalBytes: this.dataJournalBytes,
      raidDevices: this.config.raidDevices, name: 'sim', zeroMetadata: false, parityInSync: true,
    });
    // Some content to start from, written and closed cleanly.
    const first = await assembleDevices(this.members, { journal: { idleCleanMs: 0 } });
    const initial = randomBytes(this.rng, first.array.sizeBytes);
    await first.array.write(0, initial);
    await first.array.close();
    for (const device of this.members) device.closed = false; // opened again by the assembly below
    this.world.instant = false;
    this.model = new ShadowModel(first.array.sizeBytes, initial);
    await this.reassemble('start');
  }

  /** The device of member-table index `index`, if it is one of ours. */
  private deviceOf(index: number): SimDevice | undefined {
    const disk = this.array.disks.get(index);
    if (disk) return disk.device as SimDevice;
    return this.assembled.candidates.find((candidate) => candidate.index === index)?.device as SimDevice | undefined;
  }

  private deviceMap(): Map<number, SimDevice> {
    const map = new Map<number, SimDevice>();
    for (const candidate of this.assembled.candidates) map.set(candidate.index, candidate.device as SimDevice);
    for (const [index, disk] of this.array.disks) map.set(index, disk.device as SimDevice);
    return map;
  }

  /** Power loss (or, with `clean`, power off after a clean close): every member keeps what survived. */
  private async crash(clean = false): Promise<void> {
    if (!clean) {
      this.crashes++;
      this.count('crash');
    }
    this.trace(`${clean ? 'POWER OFF' : 'CRASH'} (${this.running.length} operation(s) in flight, ${this.members.reduce((sum, d) => sum + d.unflushedWrites, 0)} unflushed writes)`);
    this.world.forget(this.members);
    this.world.dropTimers();
    // The dead incarnation's operations never give back the stripe buffers they were lent.
    defaultArena().pool.abandonSetsForTests();
    this.incarnation++;
    this.maintenanceRunning = false;
    this.model.crashed();
    this.members = this.members.map((device) => {
      const image = device.crashImage(this.world, this.rng, () => this.count('torn-write'));
      image.vanished = device.vanished;
      return image;
    });
    this.doomed.clear();
    for (const device of this.members) if (device.vanished) this.doomed.add(device);
    if (!clean && this.rng.next() < 0.3) {
      // A read error while recovery reads the members (or, now and then, their superblocks: that
      // member is then left out, so only while the array has redundancy to spare).
      const present = this.members.filter((device) => !device.vanished);
      const target = this.rng.pick(present);
      const whole = present.length === this.members.length && this.array.degradedRoles().length === 0;
      const region = whole && this.rng.next() < 0.2 ? 'superblock-primary' : 'data';
      target.armed.push({ kind: 'read', region, label: `read-eio:${region === 'data' ? 'recovery' : 'superblock'}` });
      this.trace(`arm read EIO (${region}) on ${target.path} for the reassembly`);
    }
    await this.reassemble(clean ? 'a clean close' : 'a crash');
  }

  /**
   * Assembles the members (as `jraid assemble` would), running recovery; forced when jraid
   * refuses a dirty degraded array; vanished members come back (stale) when the array cannot run
   * without them. Then checks the recovered state.
   */
  private async reassemble(why: string): Promise<void> {
    let force = false;
    let forceRecovery = false;
    const leftOut = new Set<SimDevice>();
    for (let attempt = 0; attempt < 2 * this.members.length + 4; attempt++) {
      const present = this.members.filter((device) => !device.vanished && !leftOut.has(device));
      let result: Assembled | undefined;
      let failure: unknown;
      const task = this.start(`assemble after ${why}${force ? ' --force' : forceRecovery ? ' (forced recovery)' : ''}`, async () => {
        try {
          result = await assembleDevices(present, {
            journal: this.journalOptions(), force, forceRecovery,
            onEvent: (event) => this.trace(event.kind === 'member-failed' ? `event: member ${event.path} (role ${event.role}) failed: ${event.reason}` : `event: read error corrected on ${event.path}`),
          });
        } catch (error) {
          failure = error;
        }
      });
      await this.until(task);
      this.readFaultsDuringAssembly = new Set([...task.faultedMembers].map((device) => device.path));
      this.faultsDuringAssembly = (device: SimDevice) => task.faultedMembers.has(device);
      if (result) {
        this.assembled = result;
        this.array = result.array;
        this.trace(`assembled: state ${this.array.state()}, events ${this.array.sb.events}, lost roles [${this.array.lostRoles()}], recovery ${JSON.stringify(summariseRecovery(result.report.recovery))}`);
        await this.checkRecovered(result, forceRecovery || force);
        return;
      }
      if (!isJraidError(failure)) throw this.fatal(`assemble after ${why}: internal error: ${(failure as Error)?.stack ?? String(failure)}`);
      this.trace(`assemble refused: ${failure.code}: ${failure.message}`);
      if (failure.code === 'E_ARRAY_DIRTY' && !forceRecovery) {
        forceRecovery = true;
        continue;
      }
      const culprit = present.find((device) => device.path === (failure as JraidError).path);
      if (culprit && failure.code === 'E_IO' && this.faultsDuringAssembly(culprit)) {
        // Its superblocks could not be read: leave it out, as the hint says (it is still ours).
        leftOut.add(culprit);
        continue;
      }
      if (culprit && this.replacements.has(culprit.path) && ['E_MEMBER_UNKNOWN', 'E_MEMBER_NOT_JRAID', 'E_MEMBER_CORRUPT'].includes(failure.code)) {
        // A replacement that a crash caught before (or while) the rebuild enrolled it: leave it out.
        leftOut.add(culprit);
        continue;
      }
      if (failure.code === 'E_ARRAY_FAILED') {
        const gone = this.members.filter((device) => device.vanished);
        if (gone.length > 0) {
          // A vanished member comes back, stale.
          const back = this.rng.pick(gone);
          back.vanished = false;
          this.doomed.delete(back);
          this.count('stale-return');
          this.trace(`${back.path} returns (stale)`);
          continue;
        }
        if (this.config.beyond) {
          this.arrayLost = true;
          this.trace('the array is lost: more members failed than the level survives (a beyond-redundancy seed)');
          return;
        }
        throw this.fatal(`assemble after ${why}: ${failure.message}, but this seed never lost more members than RAID-${this.level} survives`);
      }
      throw this.fatal(`assemble after ${why}: ${failure.code}: ${failure.message}`);
    }
    throw this.fatal(`assemble after ${why}: no attempt succeeded`);
  }

  private async checkRecovered(result: Assembled, forced: boolean): Promise<void> {
    const recovery = result.report.recovery;
    const lost = new Set<number>();
    if (recovery && 'lostBlocks' in recovery) {
      for (const range of recovery.lostBlocks) for (let b = range.firstBlock; b < range.firstBlock + range.blockCount; b++) lost.add(b);
      if (lost.size > 0 && !forced) this.violation(`recovery gave up ${lost.size} block(s) without being forced`);
      if (lost.size > 0) this.count('forced-recovery');
    }
    if (recovery && 'unreadableBlocks' in recovery) {
      // A media error in a row the crash left mid-update: only where a sector really was bad.
      for (const range of recovery.unreadableBlocks) {
        for (let b = range.firstBlock; b < range.firstBlock + range.blockCount; b++) {
          if (!this.mediaErrorUnder(b)) this.violation(`recovery gave up block ${b} as unreadable, but its member block reads fine`);
          lost.add(b);
          this.count('media-error-loss');
        }
      }
    }
    this.model.giveUp(lost);
    const bad = new Set<number>();
    for (const range of this.array.badBlocks.ranges) for (let b = range.firstBlock; b < range.firstBlock + range.blockCount; b++) bad.add(b);
    if (bad.size > 0) this.trace(`bad blocks after recovery: ${[...bad].join(', ')}`);
    for (const b of lost) if (!bad.has(b)) this.violation(`block ${b}, given up by forced recovery, is not on the bad-block list`);
    for (const problem of this.model.recovered(bad, lost)) this.violation(problem);
    this.failedStripes.clear();
    await this.checkAtRest('after recovery');
  }

  /** Whether array block `block` lies on a member block with a latent error (or one whose read failed once). */
  private mediaErrorUnder(block: number): boolean {
    const g = this.array.geometry;
    const stripe = Math.floor((block * BLOCK_SIZE_BYTES) / g.stripeDataBytes);
    const within = block * BLOCK_SIZE_BYTES - stripe * g.stripeDataBytes;
    const dataIndex = Math.floor(within / g.chunkSizeBytes);
    const role = g.stripeMap(stripe).dataRoles[dataIndex]!;
    const device = this.deviceOf(this.array.memberIndexForRole(role));
    if (!device) return false;
    const memberBlock = (DATA_OFFSET_BYTES + g.memberDataOffsetBytes(stripe, within - dataIndex * g.chunkSizeBytes)) / BLOCK_SIZE_BYTES;
    return device.latentBad.has(memberBlock) || this.readFaultsDuringAssembly.has(device.path);
  }

  /** Parity from the member images, superblocks against the array, detail against both. */
  private async checkAtRest(when: string): Promise<void> {
    if (this.arrayLost) return;
    const devices = this.deviceMap();
    const inconsistent = inconsistentStripes(this.array, devices, this.failedStripes);
    if (inconsistent.length > 0) this.violation(`${when}: parity does not match the data in stripe(s) ${inconsistent.join(', ')}`);
    for (const problem of await superblockProblems(this.array, devices)) this.violation(`${when}: ${problem}`);
    const detail = describeArray(this.array, this.assembled.report);
    const lostRoles = this.array.lostRoles().length;
    const expected = lostRoles > this.parity ? 'failed' : this.array.degradedRoles().length > 0 ? 'degraded' : undefined;
    if (expected && detail.state !== expected) this.violation(`${when}: detail says ${detail.state}, the superblocks say ${expected}`);
    if (!expected && !['clean', 'active'].includes(detail.state)) this.violation(`${when}: detail says ${detail.state} with every role in sync`);
    if (detail.journal && detail.journal.clean && detail.journal.dirtyStripes.length > 0) {
      this.violation(`${when}: detail says the journal is clean yet lists stripes ${detail.journal.dirtyStripes.join(', ')} awaiting recovery`);
    }
    if (detail.failedDevices !== this.array.sb.members.filter((m) => m.state === 'faulty').length) this.violation(`${when}: detail counts ${detail.failedDevices} failed devices, the superblock ${this.array.sb.members.filter((m) => m.state === 'faulty').length}`);
  }

  // ---- the workload ----------------------------------------------------------------------

  private async nextOperation(): Promise<void> {
    this.operationsDone++;
    if (this.arrayLost) return;
    const roll = this.rng.next();
    const ioRunning = this.running.filter((task) => task.label.startsWith('write') || task.label.startsWith('read') || task.label.startsWith('flush')).length;
    if (roll < 0.006 && this.crashes < this.config.crashesMax) {
      await this.crash();
    } else if (roll < 0.07) {
      this.injectFault();
    } else if (roll < 0.1) {
      this.startMaintenance();
    } else if (ioRunning >= this.config.concurrency) {
      // Enough in flight: let it run.
    } else if (roll < 0.6) {
      this.startWrite();
    } else if (roll < 0.9) {
      this.startRead();
    } else {
      this.startFlush();
    }
  }

  /** Roles that cannot be read in `stripe` now: lost, rebuilding past it, vanished, or with a latent error there. */
  private unreadableRoles(stripe: number, extra: ReadonlySet<SimDevice> = new Set()): number {
    const g = this.array.geometry;
    const map = g.stripeMap(stripe);
    const roles = map.qRole >= 0 ? [...map.dataRoles, map.pRole, map.qRole] : [...map.dataRoles, map.pRole];
    let count = 0;
    for (const role of roles) {
      const index = this.array.memberIndexForRole(role);
      const device = index >= 0 ? this.deviceOf(index) : undefined;
      if (!this.array.readableDisk(role, stripe) || !device || device.vanished || extra.has(device)) {
        count++;
        continue;
      }
      const first = (DATA_OFFSET_BYTES + g.memberDataOffsetBytes(stripe, 0)) / BLOCK_SIZE_BYTES;
      for (let b = first; b < first + g.blocksPerChunk; b++) {
        if (device.latentBad.has(b)) {
          count++;
          break;
        }
      }
    }
    return count;
  }

  private beyondNow(): boolean {
    if (!this.array) return false;
    // Cached on what it depends on: the member table, rebuild progress, vanished members, bad sectors.
    let signature = `${this.incarnation}|${this.array.sb.events}|${[...this.array.rebuildProgress.values()].join(',')}`;
    for (const device of this.members) signature += `|${device.vanished ? 'v' : ''}${device.latentVersion}`;
    if (signature === this.beyondCache?.signature) return this.beyondCache.value;
    let value = this.array.lostRoles().length > this.parity;
    for (let stripe = 0; !value && stripe < this.array.geometry.stripeCount; stripe++) if (this.unreadableRoles(stripe) > this.parity) value = true;
    this.beyondCache = { signature, value };
    return value;
  }

  private beyondCache: { signature: string; value: boolean } | undefined;

  private noteBeyond(): void {
    if (!this.array || this.arrayLost) return;
    const running = this.running;
    if (running.length === 0 || running.every((task) => task.beyondSeen)) return;
    if (this.beyondNow()) {
      for (const task of running) task.beyondSeen = true;
      return;
    }
    // A task that met one-shot faults: those members count as unreadable for it while it runs.
    for (const task of running) {
      if (task.beyondSeen || task.faultedMembers.size === 0) continue;
      for (let stripe = 0; stripe < this.array.geometry.stripeCount; stripe++) {
        if (this.unreadableRoles(stripe, task.faultedMembers) > this.parity) {
          task.beyondSeen = true;
          break;
        }
      }
    }
  }

  /** Whether a failure of `task` with E_ARRAY_FAILED or E_IO is what its faults explain. */
  private failureExplained(task: Task): boolean {
    if (task.beyondSeen || this.beyondNow()) return true;
    for (let stripe = 0; stripe < this.array.geometry.stripeCount; stripe++) if (this.unreadableRoles(stripe, task.faultedMembers) > this.parity) return true;
    return false;
  }

  /** Judges an error a task ended with: a JraidError the situation explains, or a violation. */
  private judge(task: Task, error: unknown, allowed: Record<string, () => boolean>): void {
    if (task.incarnation !== this.incarnation) return;
    if (!isJraidError(error)) {
      this.violation(`#${task.id} ${task.label}: internal error: ${(error as Error)?.stack ?? String(error)}`);
      return;
    }
    const ok = allowed[error.code];
    this.trace(`#${task.id} ${task.label}: ${error.code}: ${error.message}`);
    if (ok && ok()) return;
    this.violation(`#${task.id} ${task.label}: ${error.code}: ${error.message} (not explained by the faults injected)`);
  }

  private drawRange(): { offsetBytes: number; lengthBytes: number } {
    const size = this.array.sizeBytes;
    const stripeBytes = this.array.geometry.stripeDataBytes;
    const lengthBytes = 1 + this.rng.int(this.rng.pick([16, BLOCK_SIZE_BYTES, 3 * BLOCK_SIZE_BYTES, stripeBytes, 2 * stripeBytes]));
    const aligned = this.rng.next() < 0.3;
    let offsetBytes = this.rng.int(Math.max(1, size - lengthBytes));
    if (aligned) offsetBytes -= offsetBytes % BLOCK_SIZE_BYTES;
    return { offsetBytes, lengthBytes: Math.min(lengthBytes, size - offsetBytes) };
  }

  private startWrite(): void {
    let range = this.drawRange();
    for (let attempt = 0; attempt < 3 && !this.model.canWrite(range.offsetBytes, range.lengthBytes); attempt++) range = this.drawRange();
    if (!this.model.canWrite(range.offsetBytes, range.lengthBytes)) return;
    const data = randomBytes(this.rng, range.lengthBytes);
    const handle: WriteHandle = this.model.startWrite(range.offsetBytes, data);
    const array = this.array;
    this.start(`write ${range.offsetBytes}+${range.lengthBytes}`, async (task) => {
      try {
        await array.write(range.offsetBytes, data);
        if (task.incarnation !== this.incarnation) return;
        this.model.ackWrite(handle);
        this.trace(`#${task.id} acknowledged`);
      } catch (error) {
        if (task.incarnation !== this.incarnation) return;
        this.model.failWrite(handle);
        const g = array.geometry;
        for (let stripe = Math.floor(range.offsetBytes / g.stripeDataBytes); stripe * g.stripeDataBytes < range.offsetBytes + range.lengthBytes; stripe++) this.failedStripes.add(stripe);
        this.judge(task, error, {
          E_ARRAY_FAILED: () => this.failureExplained(task),
          E_IO: () => this.failureExplained(task),
        });
      }
    });
  }

  private startRead(): void {
    const range = this.drawRange();
    const array = this.array;
    const window = this.model.beginRead(range.offsetBytes, range.lengthBytes);
    this.start(`read ${range.offsetBytes}+${range.lengthBytes}`, async (task) => {
      try {
        const got = await array.read(range.offsetBytes, range.lengthBytes);
        if (task.incarnation !== this.incarnation) return;
        const problem = this.model.checkRead(window, got);
        if (problem) this.violation(`#${task.id} ${task.label}: ${problem}`);
      } catch (error) {
        if (isJraidError(error, 'E_BAD_BLOCK') && task.incarnation === this.incarnation) {
          const first = Number(error.details?.firstBlock);
          const block = Math.max(first, Math.floor(range.offsetBytes / BLOCK_SIZE_BYTES));
          const problem = this.model.checkRead(window, { badBlock: block });
          if (problem) this.violation(`#${task.id} ${task.label}: ${problem}`);
          return;
        }
        if (task.incarnation === this.incarnation) this.model.checkRead(window, Buffer.alloc(0));
        this.judge(task, error, {
          E_ARRAY_FAILED: () => this.failureExplained(task),
          E_IO: () => this.failureExplained(task),
        });
      }
    });
  }

  private startFlush(): void {
    const array = this.array;
    const flush = this.model.beginFlush();
    this.start('flush', async (task) => {
      try {
        await array.flush();
        if (task.incarnation === this.incarnation) this.model.flushed(flush);
      } catch (error) {
        this.judge(task, error, { E_ARRAY_FAILED: () => this.failureExplained(task) });
      }
    });
  }

  // ---- faults -----------------------------------------------------------------------------

  /** Members the engine still writes to (active or rebuilding), with their devices. */
  private liveMembers(): { index: number; role: number | null; device: SimDevice }[] {
    const out: { index: number; role: number | null; device: SimDevice }[] = [];
    for (const [index, disk] of this.array.disks) {
      const entry = this.array.sb.members[index]!;
      if (entry.state === 'active' || entry.state === 'rebuilding') out.push({ index, role: entry.role, device: disk.device as SimDevice });
    }
    return out;
  }

  /** Whether one more member may be lost now: within what the level survives, or one beyond in a beyond seed. */
  private mayLoseMember(): boolean {
    const doomedLive = this.liveMembers().filter((member) => member.role !== null && this.doomed.has(member.device)).length;
    return this.array.degradedRoles().length + doomedLive < this.parity + (this.config.beyond ? 1 : 0);
  }

  private injectFault(): void {
    const live = this.liveMembers().filter(({ device }) => !device.vanished);
    if (live.length === 0) return;
    const target = this.rng.pick(live);
    const roll = this.rng.next();
    if (roll < 0.35) {
      // A latent bad sector in the member's data: reads fail there until it is rewritten.
      const g = this.array.geometry;
      const block = (DATA_OFFSET_BYTES + this.rng.int(g.stripeCount * g.chunkSizeBytes)) / BLOCK_SIZE_BYTES;
      const at = Math.floor(block);
      const stripe = Math.floor((at * BLOCK_SIZE_BYTES - DATA_OFFSET_BYTES) / g.chunkSizeBytes);
      // Within redundancy: only where the stripe can still be rebuilt around it.
      if (!this.config.beyond && this.unreadableRoles(stripe, new Set([target.device])) > this.parity) return;
      target.device.latentBad.add(at);
      target.device.latentVersion++;
      this.trace(`inject latent bad sector on ${target.device.path} block ${at} (stripe ${stripe})`);
      return;
    }
    if (roll < 0.5) {
      target.device.armed.push({ kind: 'read', label: 'read-eio' });
      this.trace(`arm read EIO on ${target.device.path}`);
      return;
    }
    if (!this.mayLoseMember()) return;
    this.doomed.add(target.device);
    if (roll < 0.65) {
      this.trace(`${target.device.path} vanishes`);
      this.count('vanish');
      target.device.loseVolatile(this.rng, () => this.count('torn-write'));
      target.device.vanished = true;
      return;
    }
    if (roll < 0.72) {
      target.device.armed.push({ kind: 'flush', label: 'flush-eio' });
      this.trace(`arm flush EIO on ${target.device.path}`);
      return;
    }
    const region: RegionKind = this.rng.pick(['data', 'data', this.options.policy === 'journal' ? 'data-journal' : 'journal', 'journal', 'superblock-primary', 'superblock-secondary', 'write-intent', 'bad-blocks']);
    target.device.armed.push({ kind: 'write', region, label: `write-eio:${region}` });
    this.trace(`arm write EIO (${region}) on ${target.device.path}`);
  }

  // ---- maintenance -------------------------------------------------------------------------

  private startMaintenance(): void {
    if (this.maintenanceRunning) return;
    const array = this.array;
    const assembled = this.assembled;
    const roll = this.rng.next();
    const lost = array.lostRoles();
    const rebuilding = array.sb.members.some((entry, index) => entry.state === 'rebuilding' && array.disks.has(index));
    if (roll < 0.15) {
      // fail-disk: a live member with a role (forced now and then in a beyond seed).
      const live = this.liveMembers().filter((m) => m.role !== null);
      if (live.length === 0) return;
      const target = this.rng.pick(live);
      const force = this.config.beyond && this.rng.next() < 0.5;
      if (!force && !this.mayLoseMember()) return;
      this.doomed.add(target.device);
      this.maintain(`fail-disk ${target.device.path}${force ? ' --force' : ''}`, async () => {
        try {
          await failDisk(assembled, target.device.path, force);
        } finally {
          this.doomed.delete(target.device);
        }
      }, { E_REFUSED: () => true });
      return;
    }
    if (roll < 0.22) {
      // add: a new spare (a crash may catch it half enrolled: then it is left out, as a user would).
      if (array.sb.members.filter((entry) => entry.state === 'spare').length >= 2 || array.sb.members.length >= 40) return;
      const spare = this.newDevice();
      this.members.push(spare);
      this.replacements.add(spare.path);
      this.maintain(`add ${spare.path}`, async () => {
        await enrolMember(array, spare);
      }, {});
      return;
    }
    if ((lost.length > 0 || rebuilding) && roll < 0.75) {
      // Re-add a returning member when one is there, else rebuild onto a spare or a new replacement.
      const returning = array.sb.members
        .map((entry, index) => ({ entry, index, device: this.deviceOf(index) }))
        .filter(({ entry, device }) => entry.role !== null && entry.state === 'faulty' && device !== undefined);
      if (returning.length > 0 && this.rng.next() < 0.5) {
        const back = this.rng.pick(returning);
        const device = back.device!;
        if (device.vanished) {
          if (this.doomed.has(device) && this.liveMembers().some((m) => m.device === device)) return;
          device.vanished = false;
          this.count('stale-return');
          this.trace(`${device.path} returns (stale), to be re-added`);
        }
        this.doomed.delete(device);
        this.maintain(`re-add ${device.path}`, async () => {
          const plan = await prepareReAdd(assembled, device.path);
          this.trace(`re-add plan: ${plan.mode} (${plan.reason})`);
          await runRebuild(array, plan.index, { checkpointIntervalMs: this.config.checkpointIntervalMs });
        }, this.maintenanceErrors());
        return;
      }
      const spare = array.sb.members.some((entry, index) => entry.state === 'spare' && array.disks.has(index) && !(this.deviceOf(index)?.vanished));
      const replacement = spare && this.rng.next() < 0.7 ? undefined : this.newDevice();
      if (replacement) {
        this.members.push(replacement);
        this.replacements.add(replacement.path);
      }
      this.maintain(`rebuild${replacement ? ` onto ${replacement.path}` : ' onto a spare'}`, async () => {
        const targets = await prepareRebuild(array, replacement);
        for (const index of targets) await runRebuild(array, index, { checkpointIntervalMs: this.config.checkpointIntervalMs });
      }, { ...this.maintenanceErrors(), E_NO_SPARE: () => true });
      return;
    }
    if (array.degradedRoles().length > 0) return;
    const repair = this.rng.next() < 0.5;
    this.maintain(`scrub${repair ? ' --repair' : ''}`, async () => {
      const outcome = await scrubArray(array, { repair, restart: this.rng.next() < 0.5, checkpointIntervalMs: this.config.checkpointIntervalMs });
      const unexplained = outcome.mismatches.filter((m) => !this.failedStripes.has(m.stripe));
      if (unexplained.length > 0) this.violation(`scrub found parity mismatches in stripe(s) ${unexplained.map((m) => m.stripe).join(', ')} that no failed write explains`);
      if (repair) for (const m of outcome.mismatches) this.failedStripes.delete(m.stripe);
    }, { E_ARRAY_DEGRADED: () => true, E_IO: () => true, E_ARRAY_FAILED: () => true });
  }

  private maintenanceErrors(): Record<string, () => boolean> {
    return { E_REFUSED: () => true, E_ARRAY_FAILED: () => true, E_IO: () => true };
  }

  private maintain(label: string, body: () => Promise<void>, allowed: Record<string, () => boolean>): void {
    this.maintenanceRunning = true;
    const incarnation = this.incarnation;
    this.start(label, async (task) => {
      try {
        await body();
        if (task.incarnation === this.incarnation) this.trace(`#${task.id} ${label} done: state ${this.array.state()}`);
      } catch (error) {
        this.judge(task, error, allowed);
      } finally {
        if (incarnation === this.incarnation) this.maintenanceRunning = false;
      }
    });
  }

  // ---- the end of a seed ------------------------------------------------------------------

  private async finish(): Promise<void> {
    await this.untilIdle();
    if (this.arrayLost) return;
    await this.verifyAll('at the end');
    if (this.violations.length > 0) return;
    if (this.failedStripes.size === 0) await this.checkAtRest('at the end');
    // A clean shutdown must leave nothing for recovery, and nothing unflushed that matters.
    const array = this.array;
    const flush = this.model.beginFlush();
    let closeError: unknown;
    const close = this.start('close', async () => {
      try {
        await array.close();
      } catch (error) {
        closeError = error;
      }
    });
    await this.until(close);
    if (closeError !== undefined) {
      this.judge(close, closeError, { E_ARRAY_FAILED: () => this.failureExplained(close) });
      return;
    }
    this.model.flushed(flush);
    const beforeLost = this.array.lostRoles().length;
    await this.crash(true);
    if (this.arrayLost) return;
    const recovery = this.assembled.report.recovery;
    if (recovery && recovery.action !== 'none' && beforeLost <= this.parity) this.violation(`a clean close left recovery to do: ${recovery.action}`);
    await this.verifyAll('after a clean close and reassembly');
  }

  /** Reads the whole array (as a task) and checks every block against the model. */
  private async verifyAll(when: string): Promise<void> {
    if (this.arrayLost) return;
    const array = this.array;
    const g = array.geometry;
    const task = this.start(`verify ${when}`, async (self) => {
      for (let offset = 0; offset < array.sizeBytes; offset += BLOCK_SIZE_BYTES) {
        const window = this.model.beginRead(offset, Math.min(BLOCK_SIZE_BYTES, array.sizeBytes - offset));
        try {
          const got = await array.read(offset, window.lengthBytes);
          const problem = this.model.checkRead(window, got);
          if (problem) this.violation(`${when}: ${problem}`);
        } catch (error) {
          if (isJraidError(error, 'E_BAD_BLOCK')) {
            const problem = this.model.checkRead(window, { badBlock: offset / BLOCK_SIZE_BYTES });
            if (problem) this.violation(`${when}: ${problem}`);
            continue;
          }
          this.model.checkRead(window, Buffer.alloc(0));
          const stripe = Math.floor(offset / g.stripeDataBytes);
          if (isJraidError(error) && ['E_ARRAY_FAILED', 'E_IO'].includes(error.code) && (this.failureExplained(self) || this.unreadableRoles(stripe, self.faultedMembers) > this.parity)) continue;
          this.judge(self, error, {});
        }
      }
    });
    await this.until(task);
  }
}

/** Seeded bytes: one draw seeds an xorshift32 that fills the buffer (Rng.bytes is too slow for whole arrays). */
function randomBytes(rng: Rng, length: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = (Math.floor(rng.next() * 0x1_0000_0000) | 1) >>> 0;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, length);
}

function summariseRecovery(recovery: RecoveryOutcome | { action: string; performed: false } | undefined): unknown {
  if (!recovery) return null;
  if (!('stripes' in recovery)) return recovery;
  return { action: recovery.action, stripes: recovery.stripes.length, torn: recovery.tornBlocks.length, lost: recovery.lostBlocks.length };
}

export interface CampaignOptions {
  level: Level;
  seeds: number;
  operations: number;
  firstSeed?: number;
  /** Replays one seed with its trace printed. */
  onlySeed?: number;
  unsafeSkipBarrier?: boolean;
  policy?: 'dirty-log' | 'journal';
  /** Stop after this many failing seeds. */
  failingSeedsMax?: number;
}

export interface CampaignSummary {
  level: Level;
  seeds: number;
  operations: number;
  ioCompleted: number;
  crashes: number;
  arraysLost: number;
  /** Seeds that ended with blocks the model no longer checked, and how many blocks. */
  unverified: { seeds: number; blocks: number };
  faults: Map<string, { injected: number; survived: number }>;
  /** One line per failing seed: the seed, its first violation, and how to replay it. */
  violations: string[];
  text: string;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignSummary> {
  const summary: CampaignSummary = { level: options.level, seeds: 0, operations: 0, ioCompleted: 0, crashes: 0, arraysLost: 0, unverified: { seeds: 0, blocks: 0 }, faults: new Map(), violations: [], text: '' };
  const seeds = options.onlySeed !== undefined ? [options.onlySeed] : Array.from({ length: options.seeds }, (_, i) => (options.firstSeed ?? 1) + i);
  const cpuAtStart = process.cpuUsage();
  let slowest: { seed: number; ms: number; io: number } | undefined;
  const wallAtStartMs = Date.now();
  for (const seed of seeds) {
    const lines: string[] = [];
    const trace = options.onlySeed !== undefined ? (line: string) => { lines.push(line); } : undefined;
    const seedStartedMs = Date.now();
    const result = await runSimulationSeed({ level: options.level, seed, operations: options.operations, trace, traceIo: trace !== undefined && process.env.JRAID_SIM_TRACE_IO === '1', unsafeSkipBarrier: options.unsafeSkipBarrier, policy: options.policy });
    const seedMs = Date.now() - seedStartedMs;
    if (!slowest || seedMs > slowest.ms) slowest = { seed, ms: seedMs, io: result.ioCompleted };
    if (trace) console.log(lines.join('\n'));
    summary.seeds++;
    summary.operations += result.operations;
    summary.ioCompleted += result.ioCompleted;
    summary.crashes += result.crashes;
    if (result.arrayLost) summary.arraysLost++;
    if (result.unverifiedBlocks > 0) {
      summary.unverified.seeds++;
      summary.unverified.blocks += result.unverifiedBlocks;
    }
    for (const [label, count] of result.faults) {
      const entry = summary.faults.get(label) ?? { injected: 0, survived: 0 };
      entry.injected += count;
      if (result.violations.length === 0) entry.survived += count;
      summary.faults.set(label, entry);
    }
    if (result.violations.length > 0) {
      summary.violations.push(`RAID-${options.level} seed ${seed}: ${result.violations[0]} (replay: JRAID_SIM_LEVEL=${options.level} JRAID_SIM_SEED=${seed} JRAID_SIM_OPS=${options.operations} npx vitest run test/unit/fault-simulation-raid${options.level}.test.ts)`);
      if (summary.violations.length >= (options.failingSeedsMax ?? 5)) break;
    }
  }
  const classes = [...summary.faults].sort(([a], [b]) => a.localeCompare(b)).map(([label, { injected, survived }]) => `  ${label.padEnd(26)} injected ${String(injected).padStart(7)}  survived ${String(survived).padStart(7)}`);
  const cpu = process.cpuUsage(cpuAtStart);
  const first = seeds[0] ?? 0;
  summary.text = [
    `fault simulation RAID-${options.level}: ${summary.seeds} seeds (${first}..${first + summary.seeds - 1}), ${summary.operations} operations, ${summary.ioCompleted} I/Os completed, ${summary.crashes} crashes, ${summary.arraysLost} arrays lost beyond redundancy, ${summary.violations.length} violations (${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU, ${((Date.now() - wallAtStartMs) / 1000).toFixed(1)} s wall)`,
    ...classes,
    ...(summary.unverified.seeds > 0 ? [`  ${summary.unverified.blocks} block(s) in ${summary.unverified.seeds} seed(s) left unchecked at the end (more than ${CANDIDATES_MAX} possible contents after failed writes)`] : []),
    ...(slowest ? [`  slowest seed ${slowest.seed}: ${(slowest.ms / 1000).toFixed(1)} s wall, ${slowest.io} I/Os`] : []),
    ...summary.violations.map((line) => `  VIOLATION ${line}`),
  ].join('\n');
  return summary;
}

/** Campaign options from the environment: JRAID_SIM_SEEDS, JRAID_SIM_OPS, JRAID_SIM_FIRST_SEED, JRAID_SIM_SEED, JRAID_SIM_LEVEL. */
export function campaignFromEnv(level: Level, defaults: { seeds: number; operations: number }): CampaignOptions | undefined {
  const only = process.env.JRAID_SIM_LEVEL;
  if (only !== undefined && Number(only) !== level) return undefined;
  const number = (name: string) => (process.env[name] === undefined ? undefined : Number(process.env[name]));
  return {
    level,
    seeds: number('JRAID_SIM_SEEDS') ?? defaults.seeds,
    operations: number('JRAID_SIM_OPS') ?? defaults.operations,
    firstSeed: number('JRAID_SIM_FIRST_SEED'),
    onlySeed: number('JRAID_SIM_SEED'),
  };
}
