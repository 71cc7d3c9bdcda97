// A second process for the range-lock test: takes a byte-range lock on a file with the built
// OfdRangeLock and answers commands on stdin, one a line, with one line each on stdout.
//   lockread OFFSET LENGTH     -> "held HEX" (the bytes read under the lock, first 8 as hex)
//   writeunlock OFFSET LENGTH BYTE -> "released"
//   try OFFSET LENGTH          -> "free" (taken and let go at once) or "busy"
import { openSync, readSync, writeSync, fsyncSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { OfdRangeLock } from '../../dist/src/device/range-lock.js';

const path = process.argv[2];
const fd = openSync(path, 'r+');
const device = {
  path,
  sizeBytes: Infinity,
  read: async (buf, offset) => { readSync(fd, buf, 0, buf.length, offset); },
  write: async (buf, offset) => { writeSync(fd, buf, 0, buf.length, offset); fsyncSync(fd); },
  flush: async () => {},
  close: async () => {},
};
const lock = new OfdRangeLock(fd, path);
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  const [op, a, b, c] = line.trim().split(/\s+/);
  const offsetBytes = Number(a);
  const lengthBytes = Number(b);
  if (op === 'lockread') {
    const buf = Buffer.alloc(lengthBytes);
    await lock.lockRead(device, buf, offsetBytes);
    process.stdout.write(`held ${buf.subarray(0, 8).toString('hex')}\n`);
  } else if (op === 'writeunlock') {
    await lock.writeUnlock(device, Buffer.alloc(lengthBytes, Number(c)), offsetBytes);
    process.stdout.write('released\n');
  } else if (op === 'try') {
    const range = { offsetBytes, lengthBytes };
    if (lock.tryLock(range)) { lock.unlock(range); process.stdout.write('free\n'); }
    else process.stdout.write('busy\n');
  }
}
