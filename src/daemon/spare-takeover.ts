// Spares take over by themselves: when a member of the served array fails and a spare is
// present, the daemon rebuilds the lost role onto it, as md does. One rebuild at a time: an
// explicit rebuild, re-add or replace asked of the daemon waits for the automatic one to end.
//
// A takeover that fails is not the end: a failure heard while one runs (the spare itself
// failing, another member) is looked at again once it ends, so the next spare takes over. A
// rebuild that stopped with its spare still a spare (the cluster could not pause its writes, a
// read error no parity covers) is tried again after a pause that doubles from RETRY_FIRST_MS,
// RETRY_ATTEMPTS_MAX times; then the daemon says so and leaves it to `jraid rebuild`.

import { resolve } from 'node:path';
import type { Assembled } from '../engine/assemble.js';
import { opRebuild, type OpContext } from '../app/operations.js';
import type { Logger } from './daemon.js';
import { rebuildSteps, type EventHub } from './monitor-events.js';

/**
 * Cluster mode (cluster.ts): every node hears of the failure; the one that takes the takeover
 * lock rebuilds, as a membership change the other nodes follow.
 */
export interface TakeoverCluster {
  tryLeadTakeover(): (() => void) | undefined;
  change<T>(what: string, fn: (settle: () => Promise<void>) => Promise<T>): Promise<T>;
}

/** The first pause before a failed takeover is tried again with the same spare; it doubles each time. */
export const RETRY_FIRST_MS = 1_000;
/** Failed takeovers onto a spare that is still present before the daemon stops trying. */
export const RETRY_ATTEMPTS_MAX = 5;

export class SpareTakeover {
  /** Set once the daemon serves as a cluster node. */
  cluster: TakeoverCluster | undefined;
  private readonly assembled: Assembled;
  private readonly log: Logger;
  private readonly events: EventHub;
  private readonly arrayName: string;
  private readonly uuid: string;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** A failure was heard while a takeover ran: look again once it ends. */
  private lookAgain = false;
  /** Takeovers in a row that failed with their spare still present. */
  private failuresInRow = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  /** `rebuild` is opRebuild; a test passes its own to fail the takeover as it chooses. */
  constructor(assembled: Assembled, log: Logger, events: EventHub, arrayName: string, uuid: string, private readonly rebuild: typeof opRebuild = opRebuild) {
    this.assembled = assembled;
    this.log = log;
    this.events = events;
    this.arrayName = arrayName;
    this.uuid = uuid;
  }

  /** A spare present for each role lost? Then rebuild onto it, after the failing operation has returned. */
  memberFailed(): void {
    if (this.stopped) return;
    if (this.running) {
      this.lookAgain = true;
      return;
    }
    this.running = (async () => {
      await new Promise((done) => setImmediate(done)); // after the failing operation has returned
      do {
        this.lookAgain = false;
        await this.run().catch((error: Error) => this.log('error', `spare takeover: ${error.message}`));
      } while (this.lookAgain && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /**
   * Resolves when no automatic rebuild runs (explicit maintenance waits for this). A retry
   * waiting for its pause is dropped: the explicit rebuild, re-add or replace supersedes it.
   */
  async idle(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.failuresInRow = 0;
    while (this.running) await this.running;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  private spares(): number[] {
    const { array } = this.assembled;
    return array.sb.members.flatMap((entry, index) => (entry.state === 'spare' && array.disks.has(index) ? [index] : []));
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    const { array } = this.assembled;
    const lost = array.lostRoles();
    const spares = this.spares();
    if (lost.length === 0) return;
    if (spares.length === 0) {
      this.log('warn', `role ${lost.join(', ')} lost and no spare present: add one with jraid add ${this.arrayName} PATH`);
      return;
    }
    if (array.state() === 'failed') return;
    const cluster = this.cluster;
    const release = cluster?.tryLeadTakeover();
    if (cluster && !release) {
      this.log('info', `role ${lost.join(', ')} lost: another cluster node runs the spare takeover`);
      return;
    }
    const spare = spares[0]!;
    let rebuilt: boolean;
    try {
      rebuilt = await this.rebuildOntoSpare(spare, lost, cluster);
    } finally {
      release?.();
    }
    if (rebuilt) {
      this.failuresInRow = 0;
      return;
    }
    // The spare failed (it is faulty now): the next one, if any, is tried at once.
    if (!this.spares().includes(spare)) {
      this.failuresInRow = 0;
      this.lookAgain = true;
      return;
    }
    this.failuresInRow++;
    const spareName = resolve(array.disks.get(spare)!.path);
    if (this.failuresInRow > RETRY_ATTEMPTS_MAX) {
      this.log('error', `spare takeover onto ${spareName} failed ${this.failuresInRow} times: not tried again; see the errors above, then run jraid rebuild ${this.arrayName}`);
      this.failuresInRow = 0;
      return;
    }
    const pauseMs = RETRY_FIRST_MS * 2 ** (this.failuresInRow - 1);
    this.log('warn', `spare takeover onto ${spareName} is tried again in ${(pauseMs / 1000).toFixed(0)} s (attempt ${this.failuresInRow + 1} of ${RETRY_ATTEMPTS_MAX + 1})`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.memberFailed(), pauseMs);
    this.retryTimer.unref();
  }

  /** True when the rebuild completed (or another node had done it). */
  private async rebuildOntoSpare(spare: number, lost: number[], cluster: TakeoverCluster | undefined): Promise<boolean> {
    const { array } = this.assembled;
    const target = resolve(array.disks.get(spare)!.path);
    this.log('info', `spare ${target} takes over lost role ${lost[0]}: rebuild started`);
    this.events.emit({ event: 'RebuildStarted', array: this.arrayName, uuid: this.uuid, member: target, message: `rebuild of role ${lost[0]} onto spare ${target} started` });
    let lastPercent = 0;
    const context: OpContext = {
      onProgress: (progress) => {
        const percent = progress.totalBytes > 0 ? (100 * progress.doneBytes) / progress.totalBytes : 0;
        for (const step of rebuildSteps(lastPercent, percent)) {
          this.events.emit({ event: `Rebuild${step}`, array: this.arrayName, uuid: this.uuid, member: target, percent: step, message: `rebuild onto ${target} ${step}% done` });
        }
        lastPercent = percent;
      },
    };
    try {
      // In a cluster the other nodes follow (open the spare, write to it) before the copy starts.
      const result = cluster
        ? await cluster.change('spare takeover', (settle) => this.rebuild(this.assembled, {}, { ...context, onMembersChanged: () => settle() }))
        : await this.rebuild(this.assembled, {}, context);
      if (result.rebuilt.length === 0) this.log('info', 'spare takeover: nothing left to rebuild (another node took it over)');
      for (const outcome of result.rebuilt) {
        const path = resolve(outcome.path);
        this.log('info', `rebuild of role ${outcome.role} onto ${path} finished: ${outcome.stripesRebuilt} stripes in ${outcome.seconds.toFixed(1)} s`);
        this.events.emit({ event: 'RebuildFinished', array: this.arrayName, uuid: this.uuid, member: path, message: `rebuild of role ${outcome.role} onto ${path} finished` });
        this.events.emit({ event: 'SpareActive', array: this.arrayName, uuid: this.uuid, member: path, message: `${path} is active in role ${outcome.role}` });
      }
      return true;
    } catch (error) {
      this.log('error', `automatic rebuild onto ${target} stopped: ${(error as Error).message}`);
      this.events.emit({ event: 'FailSpare', array: this.arrayName, uuid: this.uuid, member: target, message: `rebuild onto spare ${target} failed: ${(error as Error).message}` });
      return false;
    }
  }
}
