import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { startScriptedModel, type ScriptedModel } from '../../test/support/scripted-model.ts';
import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import { createPostgresStore } from '../store/postgres/index.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import { createGateway, type Gateway, type GatewayUsage } from './gateway.ts';
import { GrantCleaner } from './grant-cleaner.ts';
import { hashSandboxToken } from './token-registry.ts';
import { conversationFixture } from '../../test/support/store-fixtures.ts';

/** Two replicas' stores on one database, and the gateway_grants table as stored, read past the store. */
interface SharedDatabase {
  first: Store;
  second: Store;
  grantRows(): Promise<Array<Record<string, unknown>>>;
}

let postgres: TestPostgres;
let upstream: ScriptedModel;
let directory: string;

beforeAll(async () => {
  [postgres, upstream, directory] = await Promise.all([startTestPostgres(), startScriptedModel(), mkdtemp(join(tmpdir(), 'gw-grants-'))]);
});

afterAll(async () => {
  await Promise.all([postgres?.stop(), upstream?.close(), rm(directory, { recursive: true, force: true })]);
});

const backends: Record<'sqlite' | 'postgres', () => Promise<SharedDatabase>> = {
  // A new file per test.
  sqlite: async () => {
    const path = join(directory, `${newId('db')}.db`);
    return {
      first: createSqliteStore({ path }),
      second: createSqliteStore({ path }),
      grantRows: async () => {
        const database = new Database(path, { readonly: true });
        try {
          return database.prepare('select * from gateway_grants').all() as Array<Record<string, unknown>>;
        } finally {
          database.close();
        }
      },
    };
  },
  // One database for the file, its grants, tasks and replicas emptied before each test.
  postgres: async () => {
    const first = createPostgresStore({ url: postgres.url });
    await first.migrate();
    const query = async (statement: string): Promise<Array<Record<string, unknown>>> => {
      const client = new pg.Client({ connectionString: postgres.url });
      await client.connect();
      try {
        return (await client.query<Record<string, unknown>>(statement)).rows;
      } finally {
        await client.end();
      }
    };
    await query('truncate table gateway_grants, replica_tasks, replicas');
    return { first, second: createPostgresStore({ url: postgres.url }), grantRows: () => query('select * from gateway_grants') };
  },
};

/** Sends one model request over a sandbox socket; resolves with the status once the answer has ended. */
function sendModelRequest(socketPath: string, token: string): Promise<number> {
  const body = JSON.stringify({ model: 'claude-test-1', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        socketPath,
        method: 'POST',
        path: '/v1/messages',
        headers: { 'x-api-key': token, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        response.on('data', () => undefined);
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Generous: only a hang exceeds it. */
const pollBound = { timeout: 10_000, interval: 20 };

describe.each(['sqlite', 'postgres'] as const)('gateway grants on %s', (backend) => {
  let database: SharedDatabase;
  let socketDir: string;
  let gateways: Gateway[];
  let usage: GatewayUsage[];

  /** A gateway of the replica `replicaId`, keeping its grants in `store`. */
  const startGateway = (store: Store, replicaId: string, storeWaitMs?: number): Gateway => {
    const gateway = createGateway({
      upstreamUrl: upstream.url,
      credential: { kind: 'api-key', value: 'sk-ant-platform' },
      socketDir: join(socketDir, replicaId),
      onUsage: (record) => {
        usage.push(record);
      },
      grants: { store, replicaId, ...(storeWaitMs === undefined ? {} : { storeWaitMs }) },
    });
    gateways.push(gateway);
    return gateway;
  };

  beforeEach(async () => {
    database = await backends[backend]();
    await database.first.migrate();
    await database.second.migrate();
    socketDir = await mkdtemp(join(tmpdir(), 'gw-'));
    gateways = [];
    usage = [];
  });

  afterEach(async () => {
    await Promise.all(gateways.map((gateway) => gateway.closeAll()));
    // One test closes the first store itself.
    await database.first.close().catch(() => undefined);
    await database.second.close();
    await rm(socketDir, { recursive: true, force: true });
  });

  describe('Gateway', () => {
    it('resolves a grant issued by another gateway on the same database, with its turn and egress domains, until it is closed', async () => {
      const issuer = startGateway(database.first, 'rep_a');
      const other = startGateway(database.second, 'rep_b');
      const owner = await conversationFixture(database.first);
      const sandboxId = newId('sbx');
      const { token } = await issuer.open({ sandboxId, ...owner, egressDomains: ['packages.example.com'] });

      expect(await other.resolve(token)).toEqual({
        grant: { sandboxId, ...owner, egressDomains: ['packages.example.com'] },
        replicaId: 'rep_a',
        turnId: null,
      });

      issuer.setTurn(token, 'turn_1');
      issuer.setEgressDomains(token, ['*.git.example.com:443']);
      // The issuer answers from memory at once; the other replica sees the change once it is stored.
      expect(await issuer.resolve(token)).toMatchObject({ turnId: 'turn_1', grant: { egressDomains: ['*.git.example.com:443'] } });
      await expect
        .poll(() => other.resolve(token), pollBound)
        .toEqual({ grant: { sandboxId, ...owner, egressDomains: ['*.git.example.com:443'] }, replicaId: 'rep_a', turnId: 'turn_1' });
      issuer.setTurn(token, null);
      await expect.poll(async () => (await other.resolve(token))?.turnId, pollBound).toBeNull();

      expect(await other.resolve(`${token}x`)).toBeNull();
      expect(await other.resolve(hashSandboxToken(token))).toBeNull();

      await issuer.close(token);
      expect(await other.resolve(token)).toBeNull();
      expect(await issuer.resolve(token)).toBeNull();
      // Revoked, not deleted: the row stays until the cleaner's day has passed.
      expect(await database.second.getGatewayGrant(hashSandboxToken(token))).toMatchObject({ sandboxId, revokedAt: expect.any(String) });
    });

    it('keeps only the SHA-256 of the token in the store, never the token itself', async () => {
      const gateway = startGateway(database.first, 'rep_a');
      const owner = await conversationFixture(database.first);
      const first = await gateway.open({ sandboxId: newId('sbx'), ...owner, egressDomains: ['packages.example.com'] });
      const second = await gateway.open({ sandboxId: newId('sbx'), ...owner });
      gateway.setTurn(first.token, 'turn_1');
      await expect.poll(async () => (await database.second.getGatewayGrant(hashSandboxToken(first.token)))?.turnId, pollBound).toBe('turn_1');
      await gateway.close(second.token);

      const rows = await database.grantRows();
      expect(rows.map((row) => row.token_hash).sort()).toEqual([hashSandboxToken(first.token), hashSandboxToken(second.token)].sort());
      const stored = JSON.stringify(rows);
      for (const { token } of [first, second]) {
        expect(stored).not.toContain(token);
        // Not even the random part after the prefix.
        expect(stored).not.toContain(token.slice('sbx_'.length));
      }
    });

    it("serves its own sandbox's requests from memory, even while the store is unreachable", async () => {
      // A write under way when the store went may never settle: closing the sandbox waits for it only this long.
      const gateway = startGateway(database.first, 'rep_a', 500);
      const owner = await conversationFixture(database.first);
      const { token, socketPath } = await gateway.open({ sandboxId: newId('sbx'), ...owner });
      gateway.setTurn(token, 'turn_1');
      await database.first.close();

      expect(await sendModelRequest(socketPath, token)).toBe(200);
      await expect.poll(() => usage.length, pollBound).toBe(1);
      expect(usage[0]).toMatchObject({ ...owner, turnId: 'turn_1' });
      // Closing still revokes the token here; the store's copy could not be revoked (that is logged, not thrown).
      await gateway.close(token);
      expect(await sendModelRequest(socketPath, token).catch((error: NodeJS.ErrnoException) => error.code)).toBe('ENOENT');
    });

    it('opens no socket and issues no token when the grant cannot be stored', async () => {
      const gateway = startGateway(database.first, 'rep_a');
      const owner = await conversationFixture(database.first);
      const sandboxId = newId('sbx');
      const error = await gateway.open({ sandboxId, ...owner, conversationId: 'conv_missing' }).catch((rejection: unknown) => rejection);
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('CONFLICT');
      expect(existsSync(join(socketDir, 'rep_a', `${sandboxId}.sock`))).toBe(false);
      expect(await database.grantRows()).toEqual([]);

      // The sandbox id is free again.
      const { token, socketPath } = await gateway.open({ sandboxId, ...owner });
      expect(await sendModelRequest(socketPath, token)).toBe(200);
    });
  });

  describe('GrantCleaner', () => {
    const minute = 60_000;
    const day = 24 * 60 * minute;
    const start = Date.parse('2025-06-01T12:00:00.000Z');
    const iso = (ms: number): string => new Date(ms).toISOString();

    it('lets one replica at a time delete the grants of gone replicas and those revoked over a day ago, and hands the task over', async () => {
      const { first, second } = database;
      let now = start;
      const cleaners = [
        new GrantCleaner({ store: first, replicaId: 'rep_a', clock: () => now, intervalMs: minute }),
        new GrantCleaner({ store: second, replicaId: 'rep_b', clock: () => now, intervalMs: minute }),
      ];
      for (const id of ['rep_a', 'rep_b']) {
        await first.registerReplica({ id, version: '0.1.0', url: null, hostname: 'host', pid: 1, startedAt: iso(start - 3 * day) });
        await first.heartbeatReplica(id, iso(start - minute), false);
      }
      const owner = await conversationFixture(first);
      const grant = async (replicaId: string, revokedAt: number | null = null): Promise<string> => {
        const tokenHash = newId('hash');
        await first.createGatewayGrant({ tokenHash, sandboxId: newId('sbx'), ...owner, replicaId, egressDomains: [], createdAt: iso(start - 2 * day) });
        if (revokedAt !== null) await first.revokeGatewayGrant(tokenHash, iso(revokedAt));
        return tokenHash;
      };
      const live = await grant('rep_a');
      const otherLive = await grant('rep_b');
      const revokedLately = await grant('rep_a', start - 60 * minute);
      const revokedLongAgo = await grant('rep_b', start - day - minute);
      const orphan = await grant('rep_gone');
      const remaining = async (): Promise<string[]> => {
        const found = await Promise.all([live, otherLive, revokedLately, revokedLongAgo, orphan].map((hash) => second.getGatewayGrant(hash)));
        return found.flatMap((row) => (row === null ? [] : [row.tokenHash]));
      };

      const passes = await Promise.all(cleaners.map((cleaner) => cleaner.runOnce()));
      expect(passes.filter((pass) => pass.ran)).toEqual([{ ran: true, deleted: 2 }]);
      expect(passes.filter((pass) => !pass.ran)).toEqual([{ ran: false, deleted: 0 }]);
      expect(await remaining()).toEqual([live, otherLive, revokedLately]);
      const holder = passes[0]!.ran ? 0 : 1;
      const waiting = 1 - holder;

      // The holder keeps the task at its next pass; the other replica does not get it.
      now += minute;
      expect(await cleaners[waiting]!.runOnce()).toEqual({ ran: false, deleted: 0 });
      expect(await cleaners[holder]!.runOnce()).toEqual({ ran: true, deleted: 0 });

      // Stopped, it gives the task up: the other replica cleans at its next pass.
      await cleaners[holder]!.stop();
      expect(await cleaners[waiting]!.runOnce()).toEqual({ ran: true, deleted: 0 });
      expect(await cleaners[holder]!.runOnce()).toEqual({ ran: false, deleted: 0 });

      // A holder that dies without giving it up loses it once its claim has expired (two intervals).
      now += minute;
      expect(await cleaners[holder]!.runOnce()).toEqual({ ran: false, deleted: 0 });
      now += 2 * minute;
      expect(await cleaners[holder]!.runOnce()).toEqual({ ran: true, deleted: 0 });

      // Replicas not heard from for longer than the limit (5 minutes) are gone, with every grant they issued.
      now = start + 4 * minute + 1;
      expect(await cleaners[holder]!.runOnce()).toEqual({ ran: true, deleted: 3 });
      expect(await remaining()).toEqual([]);
    });

    it('cleans once when started and again at every interval until stopped', async () => {
      const { first, second } = database;
      const owner = await conversationFixture(first);
      const orphan = async (): Promise<string> => {
        const tokenHash = newId('hash');
        await first.createGatewayGrant({ tokenHash, sandboxId: newId('sbx'), ...owner, replicaId: 'rep_gone', egressDomains: [], createdAt: iso(Date.now()) });
        return tokenHash;
      };
      const before = await orphan();
      const cleaner = new GrantCleaner({ store: second, replicaId: 'rep_a', intervalMs: 50 });
      cleaner.start();
      try {
        await expect.poll(() => first.getGatewayGrant(before), pollBound).toBeNull();
        const after = await orphan();
        await expect.poll(() => first.getGatewayGrant(after), pollBound).toBeNull();
      } finally {
        await cleaner.stop();
      }
      const leftOver = await orphan();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await first.getGatewayGrant(leftOver)).not.toBeNull();
      // It gave the task up: another replica may take it at once.
      expect(await first.claimTask(GrantCleaner.taskName, 'rep_b', iso(Date.now()), iso(Date.now() + minute))).toBe(true);
    });
  });
});
