// Proves: parseSizeBytes reads plain, suffixed (binary K/M/G/T, sectors) and fractional sizes and refuses anything else; formatSizeBytes prints binary units.
import { describe, expect, it } from 'vitest';
import { formatSizeBytes, parseSizeBytes } from '../../src/units.js';

describe('parseSizeBytes', () => {
  const accepted: [text: string, sizeBytes: number][] = [
    ['4096', 4096],
    ['0', 0],
    ['64K', 64 * 1024],
    ['64k', 64 * 1024],
    ['64KiB', 64 * 1024],
    ['64KB', 64 * 1024],
    ['8m', 8 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['512S', 512 * 512],
    ['1s', 512],
    ['100B', 100],
    [' 16M ', 16 * 1024 ** 2],
    ['16 M', 16 * 1024 ** 2],
    ['0.5K', 512],
  ];
  for (const [text, sizeBytes] of accepted) {
    it(`reads ${JSON.stringify(text)} as ${sizeBytes} bytes`, () => {
      expect(parseSizeBytes(text)).toBe(sizeBytes);
    });
  }

  const refused = ['', ' ', 'abc', '-1', '1X', '1e3', 'K', '1.5', '1.K', '.5K', '1,5G', '1KK', '0x10', '99999999999T'];
  for (const text of refused) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(parseSizeBytes(text)).toBeUndefined();
    });
  }
});

describe('formatSizeBytes', () => {
  const cases: [sizeBytes: number, text: string][] = [
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [4096, '4.00 KiB'],
    [1.5 * 1024 ** 3, '1.50 GiB'],
    [60 * 1024 ** 2, '60.00 MiB'],
    [2 * 1024 ** 4, '2.00 TiB'],
    [3 * 1024 ** 5, '3.00 PiB'],
    [2048 * 1024 ** 5, '2048.00 PiB'],
  ];
  for (const [sizeBytes, text] of cases) {
    it(`prints ${sizeBytes} bytes as ${text}`, () => {
      expect(formatSizeBytes(sizeBytes)).toBe(text);
    });
  }
});
