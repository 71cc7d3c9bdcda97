// File chores shared by the layers that keep files beside the arrays (the config file, the
// daemon's run directory and registry): fs-extra for directories and removal (loaded on first use: most
// commands never need it, and loading it costs every call tens of milliseconds), and one atomic,
// durable replace for files others read while we write them.

import { open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `path` with `text` so that a reader sees the old file or the new one, never a part,
 * and the new one survives a crash once this returns: write a temporary file beside it, fsync
 * it, rename it over the old one, fsync the directory (the rename itself).
 */
export async function writeFileAtomic(path: string, text: string, mode: number): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const handle = await open(temp, 'w', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await (await fsExtra()).remove(temp);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await (await fsExtra()).remove(temp);
    throw error;
  }
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** Makes the directory (and its parents) when missing, with `mode` for those it makes. */
export async function ensureDirectory(path: string, mode: number): Promise<void> {
  await (await fsExtra()).ensureDir(path, { mode });
}

export async function removeFile(path: string): Promise<void> {
  await (await fsExtra()).remove(path);
}

let fsExtraModule: typeof import('fs-extra') | undefined;
async function fsExtra(): Promise<typeof import('fs-extra')> {
  fsExtraModule ??= (await import('fs-extra')).default;
  return fsExtraModule;
}
