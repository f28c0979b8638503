import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireSingleProcessLock, DatabaseInUseError, LockHeldError, lockSqliteDatabase, type SingleProcessLock } from './single-process-lock.ts';

const lockModule = pathToFileURL(path.join(import.meta.dirname, 'single-process-lock.ts')).href;

/** Another Node process that tries to take the lock, says `held` or `refused <error name>`, and keeps any lock until killed. */
function lockInChild(lockPath: string): { child: ChildProcess; answer: Promise<string> } {
  const script = `
    const { acquireSingleProcessLock } = await import(${JSON.stringify(lockModule)});
    try {
      await acquireSingleProcessLock(${JSON.stringify(lockPath)});
      console.log('held');
      setInterval(() => {}, 60_000);
    } catch (error) {
      console.log('refused ' + error.name);
      process.exit(3);
    }`;
  // Spawned directly (no shell), so a signal sent to `child` reaches the process that holds the lock.
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const answer = new Promise<string>((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code, signal) => reject(new Error(`lock child exited (${code ?? signal}) without answering: ${stderr}`)));
  });
  return { child, answer };
}

function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

describe('acquireSingleProcessLock', () => {
  let directory: string;
  let lockPath: string;
  const children: ChildProcess[] = [];
  const locks: SingleProcessLock[] = [];
  const inChild = (file = lockPath) => {
    const started = lockInChild(file);
    children.push(started.child);
    return started;
  };

  beforeEach(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'agentyard-lock-'));
    lockPath = path.join(directory, 'nested', 'agentyard.sqlite.lock');
  });
  afterEach(async () => {
    for (const lock of locks.splice(0)) lock.release();
    await Promise.all(children.splice(0).map((child) => kill(child, 'SIGKILL')));
    await rm(directory, { recursive: true, force: true });
  });

  it('refuses a second process while the first holds the lock, and lets it in once the holder is SIGKILLed', async () => {
    const holder = inChild();
    expect(await holder.answer).toBe('held');

    const second = inChild();
    expect(await second.answer).toBe('refused LockHeldError');
    await expect(acquireSingleProcessLock(lockPath)).rejects.toBeInstanceOf(LockHeldError);

    // No clean-up runs on SIGKILL: only the kernel can release the lock.
    await kill(holder.child, 'SIGKILL');
    const third = inChild();
    expect(await third.answer).toBe('held');
    await expect(acquireSingleProcessLock(lockPath)).rejects.toBeInstanceOf(LockHeldError);
  });

  it('keeps other processes out until released, then lets them in', async () => {
    const lock = await acquireSingleProcessLock(lockPath);
    locks.push(lock);
    expect(await inChild().answer).toBe('refused LockHeldError');

    lock.release();
    lock.release();
    expect(await inChild().answer).toBe('held');
  });

  it('refuses a second lock within the same process too', async () => {
    locks.push(await acquireSingleProcessLock(lockPath));
    await expect(acquireSingleProcessLock(lockPath)).rejects.toBeInstanceOf(LockHeldError);
  });

  it('locks one file only: another lock file beside it is free', async () => {
    locks.push(await acquireSingleProcessLock(lockPath));
    expect(await inChild(path.join(directory, 'other.lock')).answer).toBe('held');
  });

  it('leaves no journal or other file beside the lock file', async () => {
    locks.push(await acquireSingleProcessLock(lockPath));
    expect(await inChild().answer).toBe('refused LockHeldError');
    expect(await readdir(path.dirname(lockPath))).toEqual(['agentyard.sqlite.lock']);
  });
});

describe('lockSqliteDatabase', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'agentyard-lock-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('locks <database>.lock and refuses a second server, naming the data directory and PostgreSQL for replicas', async () => {
    const database = path.join(directory, 'agentyard.sqlite');
    const lock = await lockSqliteDatabase(database);
    try {
      expect(lock.path).toBe(`${database}.lock`);
      const refused = await lockSqliteDatabase(database).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(DatabaseInUseError);
      const message = (refused as Error).message;
      expect(message).toContain(`another Agentyard server is already using the data directory ${directory}`);
      expect(message).toContain(database);
      expect(message).toMatch(/several replicas.*PostgreSQL \(set DATABASE_URL/);
    } finally {
      lock.release();
    }
    (await lockSqliteDatabase(database)).release();
  });
});
