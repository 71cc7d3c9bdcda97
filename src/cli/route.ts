// Every command that names an array runs here: through the daemon serving it when one runs,
// otherwise directly on the members. Both paths run the same engine operation.

import { findDaemon, type DaemonClient } from '../daemon/control-client.js';
import type { AssembleOptions, Assembled } from '../engine/assemble.js';
import { withArray, type ArraySpec } from '../app/open.js';
import { configFor, type CommonOptions } from './options.js';

export interface RouteOptions {
  open?: AssembleOptions;
  onProgress?: (progress: { doneBytes: number; totalBytes: number }) => void;
  /** The daemon reports member changes during the operation (a replacement joined a rebuild). */
  onMembersChanged?: (memberPaths: string[]) => Promise<void> | void;
  /** Called when no daemon serves the array and the command opens it itself. */
  onDirect?: () => void;
}

export async function onArray<T>(
  spec: string, options: CommonOptions, op: string, args: Record<string, unknown>,
  direct: (assembled: Assembled & { spec: ArraySpec }) => Promise<T> | T, route: RouteOptions = {},
): Promise<T> {
  const configFile = configFor(options);
  const daemon = await findDaemon(spec, configFile);
  if (daemon) {
    try {
      // Member changes reported mid-operation are handled before the result is returned.
      const handling: Promise<void>[] = [];
      const onMembers = (paths: string[]) => { handling.push(Promise.resolve(route.onMembersChanged?.(paths))); };
      const { result } = await daemon.call<T>(op, args, undefined, route.onProgress, onMembers);
      await Promise.all(handling);
      return result;
    } finally {
      daemon.close();
    }
  }
  route.onDirect?.();
  return withArray(spec, configFile, route.open ?? {}, async (assembled) => direct(assembled));
}

/** The daemon for `spec`, for commands that stream data (write, read). */
export function daemonFor(spec: string, options: CommonOptions): Promise<DaemonClient | undefined> {
  return findDaemon(spec, configFor(options));
}

/**
 * Without a daemon, long work (scrub, rebuild, replace) holds the array until it ends: say so
 * once the work has started (its first progress report, so a refusal stays one line), and name
 * the daemon, which runs it while serving writes.
 */
export function exclusiveNotice(say: (message: string) => void, spec: string, what: string): { onDirect: () => void; started: () => void } {
  let direct = false;
  let said = false;
  return {
    onDirect: () => { direct = true; },
    started: () => {
      if (!direct || said) return;
      said = true;
      say(`no daemon serves ${spec}: this ${what} holds the array until it ends; jraid daemon ${spec} runs it while serving writes`);
    },
  };
}
