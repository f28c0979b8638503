import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { dockerUnavailable, testImage } from '../../src/sandbox/docker/docker-test-support.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { artifactsDir, buildWebApp, launchBrowser, signUpThroughPage, snap } from './browser.ts';
import { appendFinishedTurns, scrollFrameDurations } from './transcript-load.ts';

const initialJsBudgetBytes = 300 * 1024;
const dockerSkip = await dockerUnavailable('runc', process.env);
const metrics: Record<string, unknown> = {};

/** The rest of the app: agents, account, admin, uploads, queued and failed turns, phones, themes, budgets. */
describe('web app pages in Chromium', () => {
  let test: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let api: ApiClient;

  beforeAll(async () => {
    buildWebApp();
    test = await startTestPlatform();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  }, 120_000);

  afterAll(async () => {
    await writeFile(path.join(artifactsDir, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`).catch(() => undefined);
    await browser?.close();
    await test?.close();
  });

  it('loads at most 300 KB of JavaScript (gzipped) before the first screen', async () => {
    await page.goto(test.platform.url);
    await page.getByRole('tab', { name: 'Sign in' }).waitFor();
    const scripts = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .filter((entry) => entry.name.endsWith('.js'))
        .map((entry) => ({ name: entry.name, bytes: (entry as PerformanceResourceTiming).encodedBodySize })),
    );
    const total = scripts.reduce((sum, script) => sum + script.bytes, 0);
    metrics.initialJavaScriptGzipBytes = total;
    expect(scripts.length).toBeGreaterThan(0);
    expect(total).toBeLessThan(initialJsBudgetBytes);
    // Heavy parts load later, on demand.
    expect(scripts.some((script) => /terminal|highlight/.test(script.name))).toBe(false);
  });

  it('signs up and shows the empty state', async () => {
    await page.getByRole('tab', { name: 'Create account' }).click();
    await page.getByLabel('Email').fill('admin@example.com');
    await page.getByLabel('Password').fill('correct horse battery');
    await page.locator('form button[type=submit]').click();
    await page.getByRole('heading', { name: 'No conversations yet' }).waitFor();
    await expect(page.locator('.banner.warning').count()).resolves.toBe(0);
    const cookie = (await context.cookies()).find((candidate) => candidate.name === 'agentyard_session')!;
    const session = new (test.api.constructor as typeof ApiClient)(test.platform.url, { cookie: `${cookie.name}=${cookie.value}` });
    api = test.api.withToken((await session.request('POST', '/api/tokens', { name: 'test' })).body.token);
  });

  it('explains a missing model credential and how to fix it', async () => {
    const bare = await startTestPlatform({ env: { ANTHROPIC_API_KEY: '' }, model: test.model });
    const other = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    try {
      const otherPage = await other.newPage();
      await signUpThroughPage(otherPage, bare.platform.url, 'owner@example.com');
      await otherPage.getByText('No model credential is configured').waitFor();
      await expect(otherPage.locator('.banner.warning').innerText()).resolves.toContain('ANTHROPIC_API_KEY');
      await snap(otherPage, '10-no-credentials-empty-state');
    } finally {
      await other.close();
      await bare.close();
    }
  });

  it('creates, edits, duplicates and deletes agents, and a new conversation picks one', async () => {
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.getByRole('heading', { name: 'Agents', exact: true }).waitFor();
    await page.getByRole('button', { name: 'New agent' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Reviewer');
    await dialog.getByLabel('Instructions').fill('Review code carefully.');
    await dialog.getByLabel(/^Allowed tools/).fill('Read, Grep');
    await dialog.getByLabel('Memory (MiB)').fill('1024');
    // The local backend has no runtime to choose.
    await expect(dialog.getByLabel('Sandbox runtime').count()).resolves.toBe(0);
    await snap(page, '11-agent-editor');
    await dialog.getByRole('button', { name: 'Create agent' }).click();
    const card = page.locator('.agent-card', { hasText: 'Reviewer' });
    await card.waitFor();
    await expect(card.innerText()).resolves.toMatch(/Read, Grep[\s\S]*1024 MiB/);

    await card.getByRole('button', { name: 'Edit' }).click();
    await dialog.getByLabel('Description').fill('Reads, never writes');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await card.getByText('Reads, never writes').waitFor();

    await card.getByRole('button', { name: 'Duplicate' }).click();
    await expect(dialog.getByLabel('Name').inputValue()).resolves.toBe('Reviewer (copy)');
    await dialog.getByRole('button', { name: 'Create agent' }).click();
    const copy = page.locator('.agent-card', { hasText: 'Reviewer (copy)' });
    await copy.waitFor();
    await snap(page, '11-agents');
    await copy.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await copy.waitFor({ state: 'detached' });
    const agents = (await api.request('GET', '/api/agents')).body.agents.map((agent: { name: string }) => agent.name);
    expect(agents).toContain('Reviewer');
    expect(agents).not.toContain('Reviewer (copy)');

    await page.getByRole('link', { name: 'Chats' }).click();
    await page.getByRole('button', { name: 'New conversation' }).first().click();
    await page.getByRole('dialog').getByLabel('Agent').selectOption({ label: (await page.getByRole('dialog').locator('option', { hasText: 'Reviewer' }).innerText()).trim() });
    await page.getByRole('dialog').getByLabel('Title').fill('Review task');
    await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/\/c\/conv_/);
    await page.locator('.conversation-heading', { hasText: 'Reviewer' }).waitFor();
    await page.locator('.conversation-link', { hasText: 'Review task' }).getByText('Reviewer').waitFor();
  });

  it.skipIf(dockerSkip !== null)(`lets an agent choose gVisor on a Docker installation${dockerSkip ? ` (skipped: ${dockerSkip})` : ''}`, async () => {
    const docker = await startTestPlatform({
      env: { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'runc', AGENTYARD_SANDBOX_IMAGE: testImage, AGENTYARD_SANDBOX_POOL_SIZE: '0' },
      model: test.model,
    });
    const other = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    try {
      const otherPage = await other.newPage();
      await signUpThroughPage(otherPage, docker.platform.url, 'owner@example.com');
      await otherPage.getByRole('link', { name: 'Agents' }).click();
      await otherPage.getByRole('button', { name: 'New agent' }).click();
      const dialog = otherPage.getByRole('dialog');
      await dialog.getByLabel('Name').fill('Untrusted code');
      const runtime = dialog.getByLabel('Sandbox runtime');
      await expect(runtime.locator('option').allInnerTexts()).resolves.toEqual([
        'installation default: runc (containers)',
        'runc (containers)',
        'gVisor (runsc, its own kernel)',
      ]);
      await runtime.selectOption('runsc');
      await snap(otherPage, '11-agent-editor-runtime');
      await dialog.getByRole('button', { name: 'Create agent' }).click();
      const card = otherPage.locator('.agent-card', { hasText: 'Untrusted code' });
      await card.getByText('gVisor (runsc, its own kernel)').waitFor();
      const cookie = (await other.cookies()).find((candidate) => candidate.name === 'agentyard_session')!;
      const owner = new (test.api.constructor as typeof ApiClient)(docker.platform.url, { cookie: `${cookie.name}=${cookie.value}` });
      const saved = (await owner.request('GET', '/api/agents')).body.agents.find((agent: { name: string }) => agent.name === 'Untrusted code');
      expect(saved.sandboxRuntime).toBe('runsc');
    } finally {
      await other.close();
      await docker.close();
    }
  });

  it('shows queued messages, errors in place with a retry, renames, searches and deletes with confirmation', async () => {
    const box = page.getByLabel('Message');
    await box.fill('SCN_SLOW first');
    await box.press('Enter');
    await box.fill('then this one');
    await box.press('Enter');
    await page.locator('.message.user.queued', { hasText: 'then this one' }).getByText('queued').waitFor({ timeout: 30_000 });
    await expect(page.locator('.status-line').innerText()).resolves.toMatch(/1 queued/);
    await snap(page, '12-queued-message');
    await page.locator('.chat').getByText('You said: then this one').waitFor({ timeout: 60_000 });
    await expect(page.locator('.message.user.queued').count()).resolves.toBe(0);

    await box.fill('please fail ERR500');
    await box.press('Enter');
    const failed = page.locator('.turn[data-status="failed"]');
    await failed.waitFor({ timeout: 60_000 });
    await expect(failed.locator('.turn-error').innerText()).resolves.toMatch(/[A-Z_]+: /);
    await snap(page, '12-error-in-place');
    await failed.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(async () => page.locator('.turn', { hasText: 'please fail ERR500' }).count(), { timeout: 30_000 }).toBe(2);

    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Title', { exact: true }).fill('Renamed review');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.conversation-link', { hasText: 'Renamed review' }).waitFor();
    await api.request('POST', '/api/conversations', { title: 'Another one' });
    await page.reload();
    await page.getByLabel('Search conversations by title').fill('renamed');
    await expect(page.locator('.conversation-link').count()).resolves.toBe(1);
    await page.getByLabel('Search conversations by title').fill('');
    await expect(page.locator('.conversation-link').count()).resolves.toBe(2);

    // Delete asks first; cancelling keeps the conversation.
    const reviewUrl = page.url();
    await page.locator('.conversation-link', { hasText: 'Another one' }).click();
    await page.getByRole('button', { name: 'Delete the conversation' }).click();
    await page.getByRole('dialog').getByText('cannot be undone').waitFor();
    await snap(page, '12-delete-confirmation');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await expect(page.locator('.conversation-link').count()).resolves.toBe(2);
    await page.getByRole('button', { name: 'Delete the conversation' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(test.platform.url + '/');
    await expect.poll(() => page.locator('.conversation-link').count()).toBe(1);
    await page.goto(reviewUrl);
  });

  it('uploads dropped files into the workspace and downloads the workspace as a zip', async () => {
    const panel = page.locator('.file-panel');
    await panel.waitFor();
    const transfer = await page.evaluateHandle(() => {
      const data = new DataTransfer();
      data.items.add(new File(['dropped content\n'], 'dropped.txt', { type: 'text/plain' }));
      data.items.add(new File(['x'.repeat(2000)], 'second.md', { type: 'text/markdown' }));
      return data;
    });
    await panel.dispatchEvent('dragover', { dataTransfer: transfer });
    await page.locator('.drop-overlay').waitFor();
    await snap(page, '13-drag-over');
    await panel.dispatchEvent('drop', { dataTransfer: transfer });
    await page.locator('.uploads li.done', { hasText: 'dropped.txt' }).waitFor();
    await page.locator('.file-tree').getByRole('button', { name: 'dropped.txt' }).click();
    await expect(page.locator('.file-viewer .code-view').innerText()).resolves.toBe('dropped content\n');
    await snap(page, '13-uploaded');

    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Download the workspace as a zip' }).click();
    const zip = await download;
    expect(zip.suggestedFilename()).toBe('workspace.zip');
    expect(await zip.failure()).toBeNull();
  });

  it('manages API tokens: shown once, listed, revoked', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByLabel('Name').fill('laptop');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.getByTestId('new-token').innerText()).trim();
    expect(token.length).toBeGreaterThan(20);
    expect((await test.api.withToken(token).request('GET', '/api/auth/me')).status).toBe(200);
    await snap(page, '14-token-created');
    await page.getByRole('button', { name: 'Done' }).click();
    await expect(page.locator('body').innerText()).resolves.not.toContain(token);
    const row = page.locator('tr', { hasText: 'laptop' });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await row.getByText('revoked').waitFor();
    expect((await test.api.withToken(token).request('GET', '/api/auth/me')).status).toBe(401);
  });

  it('lets the admin change roles, disable users and see who is running what', async () => {
    const carol = await test.api.registerWithToken('carol@example.com');
    const conversation = (await carol.request('POST', '/api/conversations', { title: 'Carol slow work' })).body;
    await carol.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'SCN_SLOW for the admin page' });
    await page.getByRole('link', { name: 'Admin' }).click();
    const activity = page.locator('tr', { hasText: 'Carol slow work' });
    await activity.waitFor({ timeout: 30_000 });
    await expect(activity.innerText()).resolves.toContain('carol@example.com');
    // This server among the replicas: live, holding Carol's conversation while its turn runs.
    const replica = page.getByRole('table', { name: 'Server replicas' }).locator('tbody tr');
    const cells = async (): Promise<string[]> => (await replica.innerText()).split('\t').map((cell) => cell.trim());
    await expect.poll(async () => (await cells())[5], { timeout: 15_000 }).toBe('live');
    const [, version, , leases] = await cells();
    expect(version).toBe((await api.request('GET', '/api/status')).body.version);
    expect(Number(leases)).toBeGreaterThanOrEqual(1);
    await snap(page, '15-admin');

    await page.getByLabel('Role of carol@example.com').selectOption('admin');
    await expect.poll(async () => (await api.request('GET', '/api/admin/users')).body.users.find((user: { email: string }) => user.email === 'carol@example.com').role).toBe('admin');
    await page.locator('tr', { hasText: 'carol@example.com' }).getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Disable' }).click();
    await page.locator('tr', { hasText: 'carol@example.com' }).getByRole('button', { name: 'Enable' }).waitFor();
    expect((await carol.request('GET', '/api/auth/me')).status).toBe(401);
  });

  it('is readable at phone width, in dark and light themes', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, storageState: await context.storageState() });
    const mobile = await phone.newPage();
    const [conversation] = (await api.request('GET', '/api/conversations')).body.conversations.filter((item: { title: string }) => item.title === 'Renamed review');
    await mobile.goto(`${test.platform.url}/c/${conversation.id}`);
    await mobile.getByText('You said: then this one').waitFor();
    await snap(mobile, '16-phone-conversation');
    const overflow = await mobile.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll('body *')].filter((element) => element.getBoundingClientRect().right > width + 1).map((element) => `${element.tagName}.${element.className}`);
      return { by: document.documentElement.scrollWidth - width, wide: wide.slice(0, 5) };
    });
    expect(overflow).toEqual({ by: 0, wide: [] });
    await mobile.getByRole('button', { name: 'Conversations' }).click();
    await mobile.locator('.drawer-open .sidebar').waitFor();
    await snap(mobile, '16-phone-drawer');
    await mobile.getByRole('button', { name: 'Conversations' }).click();
    await mobile.getByRole('button', { name: /^Theme/ }).click(); // system → light
    await mobile.getByRole('button', { name: /^Theme/ }).click(); // light → dark
    await expect(mobile.evaluate(() => document.documentElement.dataset.theme)).resolves.toBe('dark');
    const background = await mobile.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe('rgb(13, 17, 23)');
    await snap(mobile, '16-phone-dark');
    await mobile.getByRole('button', { name: 'Files' }).click();
    await mobile.locator('.workspace-panel').getByText('dropped.txt').waitFor();
    await snap(mobile, '16-phone-files-dark');
    await mobile.reload();
    await expect(mobile.evaluate(() => document.documentElement.dataset.theme)).resolves.toBe('dark');
    await phone.close();
  });

  it('opens a conversation of 2,000 events quickly and scrolls it smoothly', async () => {
    const conversation = (await api.request('POST', '/api/conversations', { title: 'Two thousand events' })).body;
    await appendFinishedTurns(test.platform.store, conversation.id, 100);
    expect((await api.request('GET', `/api/conversations/${conversation.id}`)).body.lastSeq).toBe(2000);

    const startedAt = Date.now();
    await page.goto(`${test.platform.url}/c/${conversation.id}`);
    await page.getByText('marker-99', { exact: true }).waitFor({ timeout: 30_000 });
    const firstRenderMs = Date.now() - startedAt;
    const navigationMs = await page.evaluate(() => Math.round(performance.now()));
    metrics.twoThousandEvents = { firstRenderMs, sinceNavigationStartMs: navigationMs };
    await expect(page.locator('.turn').count()).resolves.toBe(100);
    await snap(page, '17-two-thousand-events');

    // Scroll from the bottom to the top in 40 steps, one per frame, and time the frames.
    const durations = (await scrollFrameDurations(page)).sort((a, b) => a - b);
    const frames = { median: durations[Math.floor(durations.length / 2)]!, p95: durations[Math.floor(durations.length * 0.95)]!, max: durations.at(-1)! };
    metrics.twoThousandEventsScrollFrameMs = frames;
    await page.getByText('Question 0: explain step 0').waitFor();
    // Figures: bench/web-transcript.ts. Here only bounds that catch a hang or a frozen page.
    expect(firstRenderMs).toBeLessThan(30_000);
    expect(frames.median).toBeLessThan(1000);
    process.stdout.write(`2,000-event conversation: first render ${firstRenderMs} ms (${navigationMs} ms since navigation start); scroll frames ${JSON.stringify(frames)}\n`);
  }, 120_000);
});
