// Naming an array: a name or uuid from the config file, member paths joined by commas, or one
// member's path when the config file lists its array. Every command that takes ARRAY uses this.

import { JraidError } from '../errors.js';
import { FileDevice } from '../device/file-device.js';
import { memberPathError, probeMember } from '../device/member-path.js';
import { formatUuid, parseUuid } from '../format/uuid.js';
import { assembleArray, type AssembleOptions, type Assembled, type ExpectedUuid } from '../engine/assemble.js';
import { readConfig, type ConfigArray } from './config.js';
import { readSuperblocks } from '../engine/superblock-io.js';

export interface ArraySpec {
  paths: string[];
  /** The config name, when the array was named through the config file. */
  name: string | undefined;
  fromConfig: boolean;
  /** The UUID= of the config file's ARRAY line, which the members must carry. */
  expectedUuid?: ExpectedUuid;
}

export async function resolveArraySpec(spec: string, configFile: string): Promise<ArraySpec> {
  if (!spec) throw new JraidError('E_USAGE', 'no array named', { hint: 'name an array: NAME from the config file, or MEMBER,MEMBER,...' });
  if (spec.includes(',')) return { paths: spec.split(',').filter(Boolean), name: undefined, fromConfig: false };
  const config = await readConfig(configFile);
  const uuid = parseUuid(spec);
  const entry = config.arrays.find((array) => array.name === spec || (uuid && array.uuid === formatUuid(uuid)));
  if (entry) {
    if (entry.devices.length === 0) {
      throw new JraidError('E_CONFIG', `${configFile}: ARRAY ${entry.name} lists no devices=`, { path: configFile, hint: 'run jraid assemble --scan --save-config, or add devices=' });
    }
    return { paths: entry.devices, name: entry.name, fromConfig: true, expectedUuid: expectedUuidOf(entry, configFile) };
  }
  const probe = await probeMember(spec);
  // A path that exists but cannot be a member (a FIFO, a symlink loop, ...): say so, not "unknown array".
  if (probe.kind !== 'missing') {
    const problem = memberPathError(probe);
    if (problem) throw problem;
  }
  if (probe.kind === 'file' || probe.kind === 'block') {
    const device = await FileDevice.open(spec, { readOnly: true });
    const read = await readSuperblocks(device).finally(() => device.close());
    if (read.superblock) {
      const arrayUuid = formatUuid(read.superblock.arrayUuid);
      const owner = config.arrays.find((array) => array.uuid === arrayUuid);
      if (owner && owner.devices.length > 0) return { paths: owner.devices, name: owner.name, fromConfig: true };
      throw new JraidError('E_ARRAY_UNKNOWN', `${spec} is one member of array ${read.superblock.name || arrayUuid}, and ${configFile} does not list its members`, {
        path: spec, hint: 'name every member (MEMBER,MEMBER,...) or save the array with assemble --save-config',
      });
    }
  }
  throw new JraidError('E_ARRAY_UNKNOWN', `no array "${spec}" in ${configFile}, and it is not a member list`, {
    hint: 'name an array from the config file, or list its members joined by commas (a.img,b.img,c.img)',
  });
}

export function expectedUuidOf(entry: ConfigArray, configFile: string): ExpectedUuid | undefined {
  return entry.uuid ? { uuid: entry.uuid, configFile, line: entry.line, name: entry.name } : undefined;
}

export async function openArray(spec: string, configFile: string, options: AssembleOptions): Promise<Assembled & { spec: ArraySpec }> {
  const resolved = await resolveArraySpec(spec, configFile);
  const assembled = await assembleArray(resolved.paths, { skipMissingPaths: resolved.fromConfig, expectedUuid: resolved.expectedUuid, ...options });
  return { ...assembled, spec: resolved };
}

/** Opens, runs `fn`, then shuts down cleanly (or just closes when `fn` threw). */
export async function withArray<T>(spec: string, configFile: string, options: AssembleOptions, fn: (opened: Assembled & { spec: ArraySpec }) => Promise<T>): Promise<T> {
  const opened = await openArray(spec, configFile, options);
  try {
    const result = await fn(opened);
    await opened.array.close();
    return result;
  } catch (error) {
    await opened.array.close().catch(() => {});
    throw error;
  } finally {
    await opened.release();
  }
}
