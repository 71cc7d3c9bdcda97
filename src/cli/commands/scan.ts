// `detail --scan` (ARRAY lines for the arrays in the config file, as they are now) and
// `examine --scan MEMBER...` (ARRAY lines from the members' own superblocks), as mdadm prints them.

import { resolve } from 'node:path';
import { readConfig } from '../../app/config.js';
import { opDetail } from '../../app/operations.js';
import { scanMembers, type ScannedArray } from '../../engine/scan.js';
import { EXIT_FAILED, EXIT_OK, JraidError, isJraidError } from '../../errors.js';
import { configFor, outputFor, type CommonOptions } from '../options.js';
import { printError } from '../output.js';
import { onArray } from '../route.js';

/** An array found, with its ARRAY line for the config file. */
export interface ArrayLine extends ScannedArray {
  line: string;
}

function arrayLine(entry: { name: string; uuid: string; level: number; raidDevices: number; devices: string[]; leftOut?: string[] }): ArrayLine {
  // An unnamed array is named by its uuid, which the config file accepts as a name.
  const name = entry.name || entry.uuid;
  return { ...entry, leftOut: entry.leftOut ?? [], name, line: `ARRAY ${name} level=raid${entry.level} num-devices=${entry.raidDevices} UUID=${entry.uuid} devices=${entry.devices.join(',')}` };
}

function errorRow(error: JraidError) {
  return { code: error.code, message: error.message, path: error.path ?? null, hint: error.hint ?? null };
}

export async function detailScan(options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const configFile = configFor(options);
  const config = await readConfig(configFile, { mustExist: true });
  if (config.arrays.length === 0) throw new JraidError('E_CONFIG', `${configFile} lists no arrays`, { path: configFile, hint: 'add one with jraid assemble --save-config, or jraid create --save-config' });
  const arrays: ArrayLine[] = [];
  const errors: JraidError[] = [];
  for (const entry of config.arrays) {
    try {
      const info = await onArray(entry.name, options, 'detail', {}, (assembled) => opDetail(assembled), { open: { readOnly: true, lock: 'none' } });
      const devices = info.members.filter((member) => member.path !== null && ['active', 'rebuilding', 'spare'].includes(member.state)).map((member) => resolve(member.path!));
      arrays.push(arrayLine({ name: entry.name, uuid: info.uuid, level: info.level, raidDevices: info.raidDevices, devices }));
    } catch (error) {
      if (!isJraidError(error)) throw error;
      errors.push(new JraidError(error.code, `ARRAY ${entry.name} (${configFile}:${entry.line}): ${error.message}`, { path: error.path, hint: error.hint }));
    }
  }
  return printScan(out, arrays, errors);
}

export async function examineScan(paths: string[], options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  if (paths.length === 0) throw new JraidError('E_USAGE', 'examine --scan needs the members to read', { hint: 'jraid examine --scan MEMBER... (for the config file: jraid detail --scan)' });
  const { arrays, errors } = await scanMembers(paths);
  return printScan(out, arrays.map(arrayLine), errors);
}

function printScan(out: ReturnType<typeof outputFor>, arrays: ArrayLine[], errors: JraidError[]): number {
  if (out.json || arrays.length > 0) out.result({ arrays, errors: errors.map(errorRow) }, () => arrays.map((array) => array.line).join('\n'));
  if (!out.json) for (const error of errors) printError(error, false);
  return errors.length > 0 ? EXIT_FAILED : EXIT_OK;
}
