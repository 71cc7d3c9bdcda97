// The config file, in mdadm.conf style:
//
//   # comment
//   DEVICE /dev/loop* /srv/raid/*.img
//   ARRAY r5 UUID=2f0c...-... devices=/srv/raid/a.img,/srv/raid/b.img,/srv/raid/c.img
//
// ARRAY takes the array's name as its first word (or name=NAME), its uuid, and its members.
// DEVICE globs are where `assemble --scan` looks for members of arrays listed without devices=.

import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../files.js';
import { dirname, resolve } from 'node:path';
import { JraidError } from '../errors.js';
import { formatUuid, parseUuid } from '../format/uuid.js';

export const DEFAULT_CONFIG_PATH = '/etc/jraid.conf';

export interface ConfigArray {
  name: string;
  uuid: string | undefined;
  devices: string[];
  line: number;
}

export interface Config {
  path: string;
  arrays: ConfigArray[];
  deviceGlobs: string[];
}

export function configPath(explicit: string | undefined): string {
  return explicit ?? process.env.JRAID_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export async function readConfig(path: string, options: { mustExist?: boolean } = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !options.mustExist) return { path, arrays: [], deviceGlobs: [] };
    throw new JraidError('E_CONFIG', `cannot read config file ${path}: ${code ?? String(error)}`, { path, hint: 'create it with assemble --save-config, or give --config FILE' });
  }
  return parseConfig(text, path);
}

export function parseConfig(text: string, path: string): Config {
  const config: Config = { path, arrays: [], deviceGlobs: [] };
  // mdadm joins lines that start with whitespace onto the previous one.
  const lines: { text: string; number: number }[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '');
    if (/^\s+\S/.test(line) && lines.length > 0) lines[lines.length - 1]!.text += ` ${line.trim()}`;
    else if (line.trim()) lines.push({ text: line.trim(), number: index + 1 });
  });
  for (const { text: line, number } of lines) {
    const [keyword, ...words] = line.split(/\s+/);
    const where = `${path}:${number}`;
    switch (keyword!.toUpperCase()) {
      case 'DEVICE':
      case 'DEVICES':
        config.deviceGlobs.push(...words);
        break;
      case 'ARRAY': {
        let name: string | undefined;
        let uuid: string | undefined;
        let devices: string[] = [];
        for (const word of words) {
          const eq = word.indexOf('=');
          if (eq < 0) {
            if (name !== undefined) throw new JraidError('E_CONFIG', `${where}: ARRAY has two names ("${name}" and "${word}")`, { path });
            name = word;
            continue;
          }
          const key = word.slice(0, eq).toLowerCase();
          const value = word.slice(eq + 1);
          if (key === 'name') name = value;
          else if (key === 'uuid') {
            const parsed = parseUuid(value);
            if (!parsed) throw new JraidError('E_CONFIG', `${where}: "${value}" is not a uuid`, { path });
            uuid = formatUuid(parsed);
          } else if (key === 'devices') devices = value.split(',').filter(Boolean);
          else if (!['metadata', 'level', 'num-devices', 'spares'].includes(key)) {
            throw new JraidError('E_CONFIG', `${where}: unknown ARRAY keyword "${key}"`, { path, hint: 'ARRAY NAME UUID=... devices=PATH,PATH,...' });
          }
        }
        if (!name) throw new JraidError('E_CONFIG', `${where}: ARRAY line without a name`, { path, hint: 'ARRAY NAME UUID=... devices=PATH,PATH,...' });
        if (devices.length === 0 && !uuid) throw new JraidError('E_CONFIG', `${where}: ARRAY ${name} has neither devices= nor UUID=`, { path });
        config.arrays.push({ name, uuid, devices, line: number });
        break;
      }
      case 'MAILADDR':
      case 'HOMEHOST':
      case 'CREATE':
      case 'AUTO':
        break; // mdadm keywords that mean nothing here
      default:
        throw new JraidError('E_CONFIG', `${where}: unknown keyword "${keyword}"`, { path, hint: 'lines are DEVICE or ARRAY (see jraid(8), CONFIG FILE)' });
    }
  }
  return config;
}

export function formatArrayLine(entry: { name: string; uuid: string; devices: string[] }): string {
  return `ARRAY ${entry.name} UUID=${entry.uuid} devices=${entry.devices.join(',')}`;
}

/** The config file's text and what it says; a missing file is an empty config. */
async function readConfigText(path: string): Promise<{ text: string; existing: Config }> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new JraidError('E_CONFIG', `cannot read ${path}: ${(error as Error).message}`, { path });
  }
  return { text, existing: text ? parseConfig(text, path) : { path, arrays: [], deviceGlobs: [] } };
}

/**
 * Whether saveArrayToConfig could add a new array named `name` (undefined: named by its uuid):
 * the file parses, no other array has the name, and its directory may be written. create asks
 * before it writes anything, so a refusal here leaves the members untouched.
 */
export async function checkConfigAcceptsNewArray(path: string, name: string | undefined): Promise<void> {
  const { existing } = await readConfigText(path);
  const clash = name === undefined ? undefined : existing.arrays.find((array) => array.name === name && array.uuid !== undefined);
  if (clash) {
    throw new JraidError('E_CONFIG', `${path} already names another array "${name}" (uuid ${clash.uuid})`, { path, hint: 'pick another --name, or edit the config file' });
  }
  try {
    await access(dirname(resolve(path)), constants.W_OK);
  } catch {
    throw new JraidError('E_CONFIG', `cannot write ${path}: its directory is not writable`, { path, hint: 'give --config FILE in a writable place, or run as a user who may write it' });
  }
}

/** Adds or replaces the ARRAY line for this uuid (or name), keeping every other line as it was. */
export async function saveArrayToConfig(path: string, entry: { name: string; uuid: string; devices: string[] }): Promise<void> {
  const { text, existing } = await readConfigText(path);
  const clash = existing.arrays.find((array) => array.name === entry.name && array.uuid !== entry.uuid && array.uuid !== undefined);
  if (clash) {
    throw new JraidError('E_CONFIG', `${path} already names another array "${entry.name}" (uuid ${clash.uuid})`, { path, hint: 'pick another --name, or edit the config file' });
  }
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const same = existing.arrays.find((array) => array.uuid === entry.uuid || array.name === entry.name);
  const line = formatArrayLine(entry);
  if (same) lines[same.line - 1] = line;
  else {
    if (lines.length === 0) lines.push('# jraid configuration (see jraid(8), CONFIG FILE)');
    lines.push(line);
  }
  await writeFileAtomic(path, `${lines.join('\n')}\n`, 0o644);
}
