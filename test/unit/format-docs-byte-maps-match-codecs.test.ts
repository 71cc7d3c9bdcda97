// Proves: every byte-map table in docs/FORMAT.md lists exactly the fields of the codec's declared table (offset, size, type and name, in order), so the document and the code cannot drift apart.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BAD_BLOCK_RANGE_FIELDS, BAD_BLOCKS_HEADER_FIELDS } from '../../src/format/bad-blocks.js';
import type { ByteMap, FieldType } from '../../src/format/codec.js';
import { BLOCK_CHECK_FIELDS, JOURNAL_RECORD_HEADER_FIELDS, STRIPE_ENTRY_FIELDS } from '../../src/format/journal-record.js';
import { MEMBER_ENTRY_FIELDS, REGION_ENTRY_FIELDS, SUPERBLOCK_FIELDS } from '../../src/format/superblock.js';
import { WRITE_INTENT_HEADER_FIELDS } from '../../src/format/write-intent.js';
import { DATA_JOURNAL_ENTRY_FIELDS } from '../../src/format/data-journal-entry.js';

const FORMAT_MD = readFileSync(new URL('../../docs/FORMAT.md', import.meta.url), 'utf8');

interface Row {
  offsetBytes: number;
  sizeBytes: number;
  type: FieldType;
  name: string;
}

interface DocTable {
  /** The nearest heading above the table. */
  heading: string;
  line: number;
  rows: Row[];
}

const DOC_TYPES: Record<string, FieldType> = {
  u8: 'u8', u16: 'u16', u32: 'u32', u64: 'u64', bytes: 'bytes', table: 'table', '—': 'reserved',
};

/** Names compare without case, spaces, hyphens or the offset suffix that keeps reserved fields apart in code. */
function nameKey(name: string): string {
  return name.replace(/^(reserved)\d+$/, '$1').replace(/[\s-]/g, '').toLowerCase();
}

/** Every table whose header begins `| Offset | Size | Type | Field`: the format's byte maps. */
function docByteMaps(markdown: string): DocTable[] {
  const lines = markdown.split('\n');
  const tables: DocTable[] = [];
  let heading = '';
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (!/^\|\s*Offset\s*\|\s*Size\s*\|\s*Type\s*\|\s*Field\s*\|/.test(line)) continue;
    const table: DocTable = { heading, line: index + 1, rows: [] };
    for (index += 2; index < lines.length && lines[index]!.startsWith('|'); index++) {
      const [offset, size, type, name] = lines[index]!.split('|').slice(1).map((cell) => cell.trim());
      const where = `docs/FORMAT.md line ${index + 1}`;
      expect(DOC_TYPES[type!], `${where}: unknown type ${type}`).toBeDefined();
      expect(/^\d+$/.test(offset!) && /^\d+$/.test(size!), `${where}: offset and size are plain byte counts`).toBe(true);
      table.rows.push({ offsetBytes: Number(offset), sizeBytes: Number(size), type: DOC_TYPES[type!]!, name: nameKey(name!) });
    }
    tables.push(table);
  }
  return tables;
}

function codecRows(map: ByteMap<string>): Row[] {
  return Object.entries(map.field)
    .map(([name, field]) => ({ offsetBytes: field.offsetBytes, sizeBytes: field.sizeBytes, type: field.type, name: nameKey(name) }))
    .sort((a, b) => a.offsetBytes - b.offsetBytes);
}

// In document order, with the heading each table sits under.
const EXPECTED: { heading: string; map: ByteMap<string> }[] = [
  { heading: 'Header', map: SUPERBLOCK_FIELDS },
  { heading: 'Region table entry', map: REGION_ENTRY_FIELDS },
  { heading: 'Member table entry', map: MEMBER_ENTRY_FIELDS },
  { heading: 'Record', map: JOURNAL_RECORD_HEADER_FIELDS },
  { heading: 'Record', map: STRIPE_ENTRY_FIELDS },
  { heading: 'Record', map: BLOCK_CHECK_FIELDS },
  { heading: 'Entry (4096 bytes)', map: DATA_JOURNAL_ENTRY_FIELDS },
  { heading: 'Write-intent region', map: WRITE_INTENT_HEADER_FIELDS },
  { heading: 'Bad-block region', map: BAD_BLOCKS_HEADER_FIELDS },
  { heading: 'Bad-block region', map: BAD_BLOCK_RANGE_FIELDS },
];

describe('docs/FORMAT.md byte maps', () => {
  const tables = docByteMaps(FORMAT_MD);

  it('has one byte-map table per codec table, under the expected headings', () => {
    expect(tables.map((table) => table.heading)).toEqual(EXPECTED.map((expected) => expected.heading));
  });

  for (const [index, { map }] of EXPECTED.entries()) {
    it(`the ${map.what} table matches the codec's field for field`, () => {
      const table = tables[index];
      expect(table, `no table for the ${map.what}`).toBeDefined();
      expect(table!.rows, `docs/FORMAT.md line ${table!.line} against the codec's ${map.what}`).toEqual(codecRows(map));
      const last = table!.rows[table!.rows.length - 1]!;
      expect(last.offsetBytes + last.sizeBytes).toBe(map.sizeBytes);
    });
  }
});
