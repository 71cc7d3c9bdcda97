// Option parsing shared by the commands: sizes with suffixes, and the options every command takes.

import { Command, InvalidArgumentError } from 'commander';
import { parseSizeBytes } from '../units.js';
import { configPath } from '../app/config.js';
import { Output } from './output.js';

/** Byte counts for offsets and lengths: a bare number is bytes. */
export function bytesArg(value: string): number {
  const parsed = parseSizeBytes(value);
  if (parsed === undefined) throw new InvalidArgumentError(`"${value}" is not a size (use a number with an optional K, M, G or T suffix)`);
  return parsed;
}

/** --chunk and --size, as mdadm reads them: a bare number is KiB. */
export function kibDefaultArg(value: string): number {
  const parsed = /^\s*\d+\s*$/.test(value) ? parseSizeBytes(`${value}K`) : parseSizeBytes(value);
  if (parsed === undefined) throw new InvalidArgumentError(`"${value}" is not a size (a bare number is KiB; or use K, M, G, T)`);
  return parsed;
}

export function intArg(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`"${value}" is not a whole number`);
  return Number(value);
}

export interface CommonOptions {
  json?: boolean;
  quiet?: boolean;
  config?: string;
}

export function withCommonOptions(command: Command): Command {
  return command
    .option('--json', 'print the result as JSON on stdout')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--config <file>', 'config file (default $JRAID_CONFIG or /etc/jraid.conf)');
}

export function outputFor(options: CommonOptions): Output {
  return new Output(options);
}

export function configFor(options: CommonOptions): string {
  return configPath(options.config);
}

