// The --json schema (docs/JSON.md, docs/jraid.schema.json): every document printed with --json
// passes through here, so one place decides its shape. The engine's and the daemon's results
// keep their internal names; these views give the same thing the same name everywhere:
//   schemaVersion, command     on every document (and on every line of monitor and iostat)
//   uuid                       the array's uuid; a member's is memberUuid
//   number                     a member's slot in the member table (mdadm's "Number")
//   state                      the state of the object it is in: the array's in an array or a
//                              command's result, a member's in a member object
//   path                       absolute
//   error                      {code, message, path, hint, details}

import { resolve } from 'node:path';
import type { JraidError } from '../errors.js';

export const JSON_SCHEMA_VERSION = 1;

type Json = Record<string, unknown>;

let commandName: string | null = null;

/** The command being run (set by main before its action runs), named in every document. */
export function setJsonCommand(name: string | null): void {
  commandName = name;
}

export function jsonCommand(): string | null {
  return commandName;
}

function abs(path: unknown): string | null {
  return typeof path === 'string' && path.length > 0 && path !== '-' ? resolve(path) : (path === '-' ? '-' : null);
}

function errorView(error: { code: string; message: string; path?: string | null; hint?: string | null; details?: Record<string, unknown> | null }): Json {
  return { code: error.code, message: error.message, path: error.path ? abs(error.path) : null, hint: error.hint ?? null, details: error.details ?? null };
}

export function errorDocument(error: JraidError): Json {
  return { schemaVersion: JSON_SCHEMA_VERSION, command: commandName, error: errorView(error) };
}

/** A member object from any of the engine's shapes: index/number, uuid/memberUuid, path. */
function memberView(member: Json): Json {
  const { index, uuid, memberUuid, path, ...rest } = member;
  const out: Json = { ...rest };
  if (index !== undefined || member.number !== undefined) out.number = member.number ?? index;
  if (path !== undefined) out.path = abs(path);
  if (uuid !== undefined || memberUuid !== undefined) out.memberUuid = memberUuid ?? uuid;
  return out;
}

/** An operation's result: the array's state is `state`. */
function arrayStateView(value: Json): Json {
  const { arrayState, ...rest } = value;
  return arrayState === undefined ? rest : { ...rest, state: arrayState };
}

function superblockView(sb: Json): Json {
  const { arrayUuid, thisIndex, members, ...rest } = sb;
  return { ...rest, uuid: arrayUuid, number: thisIndex, members: (members as Json[]).map(memberView) };
}

function paths(list: unknown): string[] {
  return (list as string[]).map((path) => abs(path)!);
}

const VIEWS: Record<string, (value: Json) => Json> = {
  create: (value) => ({ ...value, createdPaths: paths(value.createdPaths), savedConfig: value.savedConfig ? abs(value.savedConfig) : null, members: (value.members as Json[]).map(memberView) }),
  assemble: (value) => (Array.isArray(value.arrays)
    ? { arrays: (value.arrays as Json[]).map(VIEWS.assemble!) }
    : { ...value, members: (value.members as Json[]).map((member) => memberView({ excluded: null, primaryProblem: null, ...member })), missingPaths: paths(value.missingPaths), stale: paths(value.stale), forced: paths(value.forced) }),
  detail: (value) => {
    if (Array.isArray(value.arrays)) return { arrays: value.arrays, errors: (value.errors as Json[]).map((error) => errorView(error as never)) };
    const { counters: _counters, ...rest } = value;
    return { ...rest, members: (value.members as Json[]).map(memberView) };
  },
  examine: (value) => {
    if (Array.isArray(value.arrays)) return { arrays: value.arrays, errors: (value.errors as Json[]).map((error) => errorView(error as never)) };
    return {
      examined: (value.examined as Json[]).map((entry) => ({
        path: abs(entry.path), superblock: entry.superblock ? superblockView(entry.superblock as Json) : null, journal: entry.journal ?? [],
        primaryProblem: entry.primaryProblem ?? null, secondaryProblem: entry.secondaryProblem ?? null,
        error: entry.error ? errorView(entry.error as never) : null,
      })),
    };
  },
  write: (value) => value,
  read: (value) => ({ ...value, output: abs(value.output) ?? '-' }),
  'fail-disk': (value) => {
    const { member, role, state, arrayState, ...rest } = value;
    return { ...rest, member: { path: abs(member), role, state }, state: arrayState };
  },
  add: (value) => {
    const { path, number, state, arrayState, memberPaths, ...rest } = value;
    return { ...rest, member: { path: abs(path), number, role: null, state }, state: arrayState, memberPaths: paths(memberPaths) };
  },
  remove: (value) => ({ ...arrayStateView(value), removed: (value.removed as Json[]).map(memberView), memberPaths: paths(value.memberPaths) }),
  rebuild: (value) => ({ ...arrayStateView(value), rebuilt: (value.rebuilt as Json[]).map(memberView), memberPaths: paths(value.memberPaths) }),
  're-add': (value) => memberView(arrayStateView(value)),
  scrub: (value) => ({ ...value, mismatches: (value.mismatches as Json[]).map((mismatch) => ({ ...mismatch, path: abs(mismatch.path) })) }),
  recover: (value) => arrayStateView(value),
  replace: (value) => {
    const view = arrayStateView(value);
    return { ...view, old: memberView(value.old as Json), new: memberView(value.new as Json), memberPaths: paths(value.memberPaths) };
  },
  daemon: (value) => {
    const { spec, ...rest } = value;
    return { array: spec, ...rest, controlSocket: abs(value.controlSocket), log: abs(value.log) };
  },
  stop: (value) => value,
  status: (value) => ({
    arrays: (value.arrays as Json[]).map((array) => ({
      ...array, members: (array.members as Json[]).map(memberView), error: array.error ? errorView(array.error as never) : null,
    })),
  }),
  'zero-superblock': (value) => ({ zeroed: (value.zeroed as Json[]).map((member) => ({ ...member, path: abs(member.path) })) }),
  monitor: (value) => ({ ...value, member: abs(value.member) }),
  iostat: (value) => ({ ...value, members: (value.members as Json[]).map(memberView) }),
};

/** The document printed for `value`, the result of the current command. */
export function resultDocument(value: unknown): Json {
  const view = commandName ? VIEWS[commandName] : undefined;
  const body = view ? view(value as Json) : (value as Json);
  return { schemaVersion: JSON_SCHEMA_VERSION, command: commandName, ...body };
}

export const JSON_COMMANDS = Object.keys(VIEWS);
