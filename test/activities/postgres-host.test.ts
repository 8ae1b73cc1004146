/**
 * A postmaster.pid outlives a crash and its pid is reused by the kernel: clusterPid names a pid only when
 * that process is the cluster's postmaster, so a fence or a lab reset never signals an unrelated process.
 * Against a real process (a `sleep` child) and a real PostgreSQL cluster.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPid, stopCluster } from '../../activities/postgres-host';
import { isAlive } from '../../lib/processes';
import { createTestLab, type TestLab } from '../helpers/lab';

let lab: TestLab;
let dir: string;
let stranger: ChildProcess;

beforeAll(async () => {
  lab = await createTestLab('postgres-host');
  dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-stale-pid-'));
  chmodSync(dir, 0o755);
  stranger = spawn('sleep', ['300'], { stdio: 'ignore' });
}, 240_000);

afterAll(async () => {
  stranger?.kill('SIGKILL');
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('clusterPid', () => {
  it('a stale postmaster.pid naming a live unrelated process is not a running cluster, and stopCluster leaves that process alone', async () => {
    const pid = stranger.pid as number;
    writeFileSync(path.join(dir, 'postmaster.pid'), `${pid}\n${dir}\n1700000000\n5432\n`);
    expect(isAlive(pid)).toBe(true);
    expect(clusterPid({ dataDir: dir })).toBeUndefined();
    await stopCluster({ dataDir: dir });
    await stopCluster({ dataDir: dir }, 'kill');
    expect(isAlive(pid)).toBe(true);
  });

  it('names the postmaster of a running cluster', () => {
    const { primary } = lab.lab.clusters('orders');
    const pid = clusterPid(primary);
    expect(pid).toBeGreaterThan(0);
    expect(clusterPid({ dataDir: lab.lab.clusters('orders').standby.dataDir })).not.toBe(pid);
  });
});
