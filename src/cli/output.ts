// Everything the CLI prints goes through here: results on stdout (text or JSON), messages and
// progress on stderr. Progress only on a TTY, never with --json or --quiet.

import Table from 'cli-table3';
import { JraidError } from '../errors.js';
import { errorDocument, resultDocument } from './json.js';

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;

  constructor(options: OutputOptions) {
    this.json = !!options.json;
    this.quiet = !!options.quiet;
  }

  /** A result: printed as JSON with --json (the documented schema, json.ts), otherwise as `text()`. */
  result(value: unknown, text: () => string): void {
    if (this.json) process.stdout.write(`${JSON.stringify(resultDocument(value), null, 2)}\n`);
    else if (!this.quiet) process.stdout.write(text().replace(/\n?$/, '\n'));
  }

  /** One document per line (monitor events, iostat reports): JSON Lines with --json. */
  line(value: unknown, text: () => string): void {
    if (this.json) process.stdout.write(`${JSON.stringify(resultDocument(value))}\n`);
    else if (!this.quiet) process.stdout.write(text().replace(/\n?$/, '\n'));
  }

  /** A message for the person at the terminal (stderr), silenced by --quiet and --json. */
  info(message: string): void {
    if (!this.quiet && !this.json) process.stderr.write(`jraid: ${message}\n`);
  }

  warn(message: string): void {
    if (!this.json) process.stderr.write(`jraid: warning: ${message}\n`);
  }

  get progressAllowed(): boolean {
    return !this.json && !this.quiet && !!process.stderr.isTTY;
  }
}

export function printError(error: JraidError, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(errorDocument(error), null, 2)}\n`);
  }
  const hint = error.hint ? ` (${error.hint})` : '';
  process.stderr.write(`jraid: error: ${error.message}${hint} [${error.code}]\n`);
}

/** "Key : value" lines, right-aligned keys, as mdadm --detail prints them. */
export function keyValues(rows: [string, string | number][]): string {
  const width = Math.max(...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `${key.padStart(width)} : ${value}`).join('\n');
}

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head,
    style: { head: [], border: [], compact: true },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '  ', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
  });
  for (const row of rows) t.push(row.map(String));
  return t.toString();
}
