// Spares take over by themselves: when a member of the served array fails and a spare is
// present, the daemon rebuilds the lost role onto it, as md does. One rebuild at a time: an
// explicit rebuild, re-add or replace asked of the daemon waits for the automatic one to end.

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

  constructor(assembled: Assembled, log: Logger, events: EventHub, arrayName: string, uuid: string) {
    this.assembled = assembled;
    this.log = log;
    this.events = events;
    this.arrayName = arrayName;
    this.uuid = uuid;
  }

  /** A spare present for each role lost? Then rebuild onto it, after the failing operation has returned. */
  memberFailed(): void {
    if (this.stopped || this.running) return;
    setImmediate(() => { if (!this.running && !this.stopped) this.running = this.run().finally(() => { this.running = undefined; }); });
  }

  /** Resolves when no automatic rebuild runs (explicit maintenance waits for this). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    this.stopped = true;
  }

  private spares(): number[] {
    const { array } = this.assembled;
    return array.sb.members.flatMap((entry, index) => (entry.state === 'spare' && array.disks.has(index) ? [index] : []));
  }

  private async run(): Promise<void> {
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
    try {
      await this.rebuildOntoSpare(spares[0]!, lost, cluster);
    } finally {
      release?.();
    }
  }

  private async rebuildOntoSpare(spare: number, lost: number[], cluster: TakeoverCluster | undefined): Promise<void> {
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
        ? await cluster.change('spare takeover', (settle) => opRebuild(this.assembled, {}, { ...context, onMembersChanged: () => settle() }))
        : await opRebuild(this.assembled, {}, context);
      if (result.rebuilt.length === 0) this.log('info', 'spare takeover: nothing left to rebuild (another node took it over)');
      for (const outcome of result.rebuilt) {
        const path = resolve(outcome.path);
        this.log('info', `rebuild of role ${outcome.role} onto ${path} finished: ${outcome.stripesRebuilt} stripes in ${outcome.seconds.toFixed(1)} s`);
        this.events.emit({ event: 'RebuildFinished', array: this.arrayName, uuid: this.uuid, member: path, message: `rebuild of role ${outcome.role} onto ${path} finished` });
        this.events.emit({ event: 'SpareActive', array: this.arrayName, uuid: this.uuid, member: path, message: `${path} is active in role ${outcome.role}` });
      }
    } catch (error) {
      this.log('error', `automatic rebuild onto ${target} stopped: ${(error as Error).message}`);
      this.events.emit({ event: 'FailSpare', array: this.arrayName, uuid: this.uuid, member: target, message: `rebuild onto spare ${target} failed: ${(error as Error).message}` });
    }
  }
}
