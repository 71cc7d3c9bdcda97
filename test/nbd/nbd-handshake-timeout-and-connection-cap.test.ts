// Proves: silent connections cannot starve an NBD server: 300 of them do not block a new client
// and are closed once the handshake timeout passes; at the connection cap a newcomer evicts the
// oldest connection still negotiating, and when every connection is serving it is refused
// politely (an error reply that says why, then a clean close). The daemon takes both limits as
// options, and a CLI talking to a daemon that has run out of descriptors gets one error line.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { NBD_OPT_GO, NBD_REP_ERR_POLICY, encodeInfoRequest } from '../../src/daemon/nbd-protocol.js';
import { KIB, MIB } from '../../src/units.js';
import { EXIT, JRAID_BIN, errorLine, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon, waitForExit } from '../helpers/daemon.js';
import { startMemoryNbdServer, type MemoryNbdServer } from '../helpers/nbd-memory-backend.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';
import { requireTool } from '../helpers/tools.js';

let fixture: MemoryNbdServer | undefined;
let ws: Workspace | undefined;
const clients: RawNbdClient[] = [];
const pids: number[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await fixture?.cleanup();
  fixture = undefined;
  ws?.cleanup();
  ws = undefined;
});

async function connect(path: string): Promise<RawNbdClient> {
  const client = await RawNbdClient.connect({ path });
  clients.push(client);
  return client;
}

async function serving(path: string): Promise<RawNbdClient> {
  const client = await connect(path);
  await client.handshake();
  return client;
}

/** A newcomer asks for the export: the final option reply, and whether the server then closes. */
async function askForExport(path: string): Promise<{ replyType: number; message: string; closed: boolean }> {
  const client = await connect(path);
  await client.greet();
  client.sendOption(NBD_OPT_GO, encodeInfoRequest('', []));
  const replies = await client.readOptionReplies();
  const last = replies[replies.length - 1]!;
  return { replyType: last.replyType, message: last.data.toString('utf8'), closed: await client.closesWithin(3_000) };
}

describe('NBD server: handshake timeout and connection cap', () => {
  it('300 silent connections do not block a new client, and are closed after the handshake timeout', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: MIB, limits: { handshakeTimeoutMs: 1_500 } });
    const silent = await Promise.all(Array.from({ length: 300 }, () => connect(fixture!.socketPath)));
    const client = await serving(fixture.socketPath);
    const data = randomBytes(4 * KIB);
    expect(await client.write(8 * KIB, data)).toBe(0);
    expect((await client.read(8 * KIB, data.length)).data.equals(data)).toBe(true);
    const closed = await Promise.all(silent.map((connection) => connection.closesWithin(15_000)));
    expect(closed.filter(Boolean)).toHaveLength(300);
    // The client that finished its handshake is served on.
    expect((await client.read(8 * KIB, data.length)).data.equals(data)).toBe(true);
    expect(fixture.server.connectionCount).toBe(1);
  });

  it('at the cap, a newcomer evicts the oldest connection still negotiating', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: MIB, limits: { connectionsMax: 8, handshakeTimeoutMs: 60_000 } });
    const silent: RawNbdClient[] = [];
    for (let index = 0; index < 8; index++) silent.push(await connect(fixture.socketPath));
    const client = await serving(fixture.socketPath);
    expect(await client.write(0, Buffer.alloc(512, 1))).toBe(0);
    expect(await silent[0]!.closesWithin(3_000)).toBe(true);
    expect(await silent[7]!.closesWithin(200)).toBe(false);
    expect(fixture.server.connectionCount).toBe(8);
  });

  it('when every connection is serving, a newcomer is refused politely, and served once one leaves', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: MIB, limits: { connectionsMax: 3 } });
    const served = [await serving(fixture.socketPath), await serving(fixture.socketPath), await serving(fixture.socketPath)];
    const refused = await askForExport(fixture.socketPath);
    expect(refused.replyType).toBe(NBD_REP_ERR_POLICY);
    expect(refused.message).toMatch(/too many connections: this server serves at most 3 at once/);
    expect(refused.closed).toBe(true);
    for (const client of served) expect(await client.write(0, Buffer.alloc(512, 2))).toBe(0);
    served[0]!.disconnect();
    await served[0]!.closed;
    const later = await serving(fixture.socketPath);
    expect(await later.write(0, Buffer.alloc(512, 3))).toBe(0);
    expect(fixture.logs.some((log) => log.level === 'warn' && /refusing a connection: too many connections/.test(log.message))).toBe(true);
  });
});

describe('the daemon: NBD limits as options, and a CLI facing a daemon out of descriptors', () => {
  async function makeArray(): Promise<string> {
    ws = workspace();
    const members = ['a', 'b', 'c'].map((name) => ws!.path(`${name}.img`));
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', '16M', ...members])).exitCode).toBe(EXIT.OK);
    return members.join(',');
  }

  it.runIf(requireTool('nbdinfo'))('--nbd-connections-max and --nbd-handshake-timeout reach the daemon; nbdinfo is told why it is refused', async () => {
    const spec = await makeArray();
    const socket = ws!.path('served.nbd');
    const daemon = await startDaemon(ws!, spec, ['--nbd', `unix:${socket}`, '--nbd-connections-max', '2', '--nbd-handshake-timeout', '1000']);
    pids.push(daemon.pid);
    const silent = await connect(socket);
    expect(await silent.closesWithin(10_000)).toBe(true);
    const served = [await serving(socket), await serving(socket)];
    const uri = `nbd+unix:///?socket=${socket}`;
    // libnbd shows the server's message in its debug output (nbdinfo itself prints the errno).
    const refused = await execa('nbdinfo', [uri], { reject: false, env: { LIBNBD_DEBUG: '1' } });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/nbd_opt_go: handshake: server error message: too many connections: this server serves at most 2 at once/);
    served[0]!.disconnect();
    await served[0]!.closed;
    expect((await execa('nbdinfo', ['--size', uri])).stdout.trim()).toMatch(/^\d+$/);
    expect((await ws!.run(['stop', spec], { env: daemonEnv(ws!) })).exitCode).toBe(EXIT.OK);
    await waitForExit(daemon.pid);
  });

  it.runIf(requireTool('prlimit'))('a daemon out of file descriptors: the CLI prints one line with a code, and recovers after the timeout', async () => {
    const spec = await makeArray();
    const env = daemonEnv(ws!);
    const socket = ws!.path('served.nbd');
    // Few descriptors, a cap above them: silent clients exhaust the daemon's descriptors.
    const started = await execa('prlimit', ['--nofile=64:64', '--', JRAID_BIN, 'daemon', spec, '--json', '--nbd', `unix:${socket}`,
      '--nbd-connections-max', '1000', '--nbd-handshake-timeout', '10000'], { reject: false, env });
    expect(started.exitCode, started.stderr).toBe(EXIT.OK);
    const pid = (JSON.parse(started.stdout) as { pid: number }).pid;
    pids.push(pid);
    await Promise.all(Array.from({ length: 100 }, () => connect(socket)));
    // The daemon drops each control connection it cannot accept: the CLI sees the close, or an
    // EPIPE on its request ("This socket has been ended by the other party"). Either way: one line.
    writeFileSync(ws!.path('small'), 'x');
    let starved: Awaited<ReturnType<Workspace['run']>> | undefined;
    for (const args of [['detail', spec], ['write', spec, '-o', '0', '-i', ws!.path('small')], ['detail', spec], ['write', spec, '-o', '0', '-i', ws!.path('small')]]) {
      starved = await ws!.run(args, { env });
      expect(starved.exitCode, starved.stdout + starved.stderr).toBe(EXIT.FAILED);
      const { code, line } = errorLine(starved);
      expect(code).toBe('E_DAEMON');
      expect(line).toMatch(new RegExp(`daemon serving this array \\(pid ${pid}\\)`));
    }
    // Once the handshake timeout has closed the silent clients, the daemon answers again.
    let detail = starved!;
    for (let attempt = 0; attempt < 60 && detail.exitCode !== EXIT.OK; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      detail = await ws!.run(['detail', spec], { env });
    }
    expect(detail.exitCode, detail.stderr).toBe(EXIT.OK);
    expect(alive(pid)).toBe(true);
    expect((await ws!.run(['stop', spec], { env })).exitCode).toBe(EXIT.OK);
    await waitForExit(pid);
  });
});
