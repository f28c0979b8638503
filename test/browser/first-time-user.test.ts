import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { text } from '../support/scripted-model.ts';
import { buildWebApp, launchBrowser, snap } from './browser.ts';

const slowTurn = 'Count slowly please SCN_SLOW';
const slowReply = Array.from({ length: 20 }, (_, position) => `chunk${position}`).join(' ');
/** A turn long enough (30 s) that it is still running whenever the test presses Escape. */
const longTurn = 'Take your time SCN_LONG';
const lightTerminal = { foreground: 'rgb(31, 35, 40)', background: 'rgb(255, 255, 255)' };
const darkTerminal = { foreground: 'rgb(230, 237, 243)', background: 'rgb(13, 17, 23)' };

/** Issue 9: what a first-time user ran into in the browser, each checked in Chromium against a real server. */
describe('a first-time user in Chromium', () => {
  let test: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** The API as the signed-in browser user (their session cookie). */
  let api: ApiClient;
  let conversationId = '';

  beforeAll(async () => {
    buildWebApp();
    test = await startTestPlatform({ env: { AGENTYARD_QUOTA_TOKENS_PER_MONTH: '50000000' } });
    test.model.setScript((request, scriptContext) => {
      if (request.lastUserText.includes('SCN_LONG')) return text(Array.from({ length: 150 }, (_, position) => `tick${position} `), { delayMs: 200 });
      return scriptContext.defaultScript(request, scriptContext);
    });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: 'light' });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await test?.close();
  });

  const send = async (message: string): Promise<void> => {
    const box = page.getByLabel('Message');
    await box.fill(message);
    await box.press('Enter');
  };
  const announcer = () => page.getByTestId('announcer');
  const terminalColours = () =>
    page.evaluate(() => {
      const rows = document.querySelector('.terminal-screen .xterm-rows');
      // xterm paints its theme's background on the scrollable element that holds the rows.
      const scrollable = document.querySelector('.terminal-screen .xterm-scrollable-element') ?? document.querySelector('.terminal-screen .xterm-viewport');
      return { foreground: rows ? getComputedStyle(rows).color : null, background: scrollable ? getComputedStyle(scrollable).backgroundColor : null };
    });

  it('opens the sign-in page on “Create account” on a server with no account yet, and on “Sign in” once one exists', async () => {
    expect((await test.api.request('GET', '/api/status')).body.hasAccounts).toBe(false);
    const status = page.waitForResponse((response) => response.url().endsWith('/api/status'));
    await page.goto(test.platform.url);
    await status;
    await expect.poll(() => page.getByRole('tab', { name: 'Create account' }).getAttribute('aria-selected')).toBe('true');
    await expect(page.getByRole('tab', { name: 'Sign in' }).getAttribute('aria-selected')).resolves.toBe('false');
    await expect(page.locator('form button[type=submit]').innerText()).resolves.toBe('Create account');
    await snap(page, 'first-user-01-create-account-first');

    await page.getByLabel('Email').fill('newcomer@example.com');
    await page.getByLabel('Password').fill('correct horse battery');
    await page.locator('form button[type=submit]').click();
    await page.getByRole('heading', { name: 'No conversations yet' }).waitFor();
    const cookie = (await context.cookies()).find((candidate) => candidate.name === 'agentyard_session')!;
    api = new ApiClient(test.platform.url, { cookie: `${cookie.name}=${cookie.value}` });

    // The field says whether an account exists, and nothing more.
    const after = (await test.api.request('GET', '/api/status')).body;
    expect(after.hasAccounts).toBe(true);
    expect(JSON.stringify(after)).not.toContain('newcomer');
    const stranger = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    const strangerPage = await stranger.newPage();
    const strangerStatus = strangerPage.waitForResponse((response) => response.url().endsWith('/api/status'));
    await strangerPage.goto(test.platform.url);
    await strangerStatus;
    await strangerPage.waitForTimeout(300);
    await expect(strangerPage.getByRole('tab', { name: 'Sign in' }).getAttribute('aria-selected')).resolves.toBe('true');
    await snap(strangerPage, 'first-user-01-sign-in-once-an-account-exists');
    await stranger.close();
  }, 90_000);

  it('draws a visible focus ring around the conversation search box', async () => {
    const box = page.locator('.sidebar .search');
    const outline = () => box.evaluate((element) => ({ style: getComputedStyle(element).outlineStyle, width: getComputedStyle(element).outlineWidth, color: getComputedStyle(element).outlineColor }));
    await expect(outline()).resolves.toMatchObject({ style: 'none' });
    await page.getByLabel('Search conversations by title').focus();
    const focused = await outline();
    expect(focused.style).toBe('solid');
    expect(Number.parseFloat(focused.width)).toBeGreaterThanOrEqual(2);
    expect(focused.color).toBe('rgb(79, 70, 229)'); // the accent colour of the light theme
    await snap(page, 'first-user-02-search-focus-ring');
    await page.getByLabel('Search conversations by title').blur();
  });

  it('chooses an agent’s model from the installation’s list, or a custom id', async () => {
    expect((await test.api.request('GET', '/api/models')).status).toBe(401);
    const choices = (await api.request('GET', '/api/models')).body as { defaultModel: string; models: Array<{ id: string }> };
    expect(choices.models[0]!.id).toBe('claude-sonnet-5');
    expect(choices.models.map((model) => model.id)).toContain('claude-haiku-4-5');

    await page.getByRole('link', { name: 'Agents' }).click();
    await page.getByRole('button', { name: 'New agent' }).click();
    const dialog = page.getByRole('dialog');
    const model = dialog.getByLabel('Model', { exact: true });
    await expect.poll(() => model.locator('option').count()).toBe(choices.models.length + 1);
    const options = await model.locator('option').evaluateAll((elements) => elements.map((element) => ({ value: (element as HTMLOptionElement).value, label: element.textContent })));
    expect(options.slice(0, -1).map((option) => option.value)).toEqual(choices.models.map((choice) => choice.id));
    expect(options.at(-1)!.label).toBe('Custom…');
    expect(options.find((option) => option.value === 'claude-haiku-4-5')!.label).toContain('$1 / $5 per M tokens');
    await expect(dialog.getByLabel('Model id').count()).resolves.toBe(0);
    await model.selectOption('claude-haiku-4-5');
    await dialog.getByLabel('Name').fill('Haiku helper');
    await snap(page, 'first-user-03-model-list');
    await dialog.getByRole('button', { name: 'Create agent' }).click();
    await page.locator('.agent-card', { hasText: 'Haiku helper' }).waitFor();

    await page.getByRole('button', { name: 'New agent' }).click();
    await dialog.getByLabel('Name').fill('Local model');
    await dialog.getByLabel('Model', { exact: true }).selectOption({ label: 'Custom…' });
    await dialog.getByLabel('Model id').fill('my-local-model');
    await snap(page, 'first-user-03-model-custom');
    await dialog.getByRole('button', { name: 'Create agent' }).click();
    await page.locator('.agent-card', { hasText: 'Local model' }).waitFor();

    const agents = (await api.request('GET', '/api/agents')).body.agents as Array<{ name: string; model: string }>;
    expect(agents.find((agent) => agent.name === 'Haiku helper')!.model).toBe('claude-haiku-4-5');
    expect(agents.find((agent) => agent.name === 'Local model')!.model).toBe('my-local-model');

    // Editing an agent with a model off the list shows it as custom, unchanged.
    await page.locator('.agent-card', { hasText: 'Local model' }).getByRole('button', { name: 'Edit' }).click();
    await expect(dialog.getByLabel('Model', { exact: true }).inputValue()).resolves.toBe('__custom__');
    await expect(dialog.getByLabel('Model id').inputValue()).resolves.toBe('my-local-model');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });

  it('starts a conversation from an agent card', async () => {
    const card = page.locator('.agent-card', { hasText: 'Haiku helper' });
    await card.getByRole('button', { name: 'Start a conversation with Haiku helper' }).click();
    await page.waitForURL(/\/c\/conv_/);
    conversationId = new URL(page.url()).pathname.split('/').at(-1)!;
    await page.getByRole('heading', { name: 'Say hello' }).waitFor();
    const agents = (await api.request('GET', '/api/agents')).body.agents as Array<{ id: string; name: string }>;
    const conversation = (await api.request('GET', `/api/conversations/${conversationId}`)).body;
    expect(conversation.agentId).toBe(agents.find((agent) => agent.name === 'Haiku helper')!.id);
    await page.locator('.conversation-link[aria-current="page"]').waitFor();
    await snap(page, 'first-user-04-started-from-agent-card');
  });

  it('shows the title the first message gives in the sidebar and the header, and renaming still works', async () => {
    await send('Plan the garden beds');
    await page.locator('.chat').getByText('You said: Plan the garden beds').waitFor({ timeout: 90_000 });
    const active = page.locator('.conversation-link[aria-current="page"] .conversation-title');
    await expect.poll(() => active.innerText(), { timeout: 20_000 }).toContain('Plan the garden beds');
    await expect.poll(() => page.locator('.conversation-heading h1').innerText()).toContain('Plan the garden beds');
    await snap(page, 'first-user-05-title-from-first-message');

    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Title', { exact: true }).fill('Garden plan');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => active.innerText()).toBe('Garden plan');
    await expect(page.locator('.conversation-heading h1').innerText()).resolves.toBe('Garden plan');
    expect((await api.request('GET', `/api/conversations/${conversationId}`)).body.title).toBe('Garden plan');
  }, 150_000);

  it('announces status changes and finished messages in a polite live region, never each streamed delta', async () => {
    // The transcript is no live region, and holds none.
    const transcript = await page.evaluate(() => {
      const chat = document.querySelector('.chat')!;
      return {
        liveAncestor: chat.closest('[aria-live]') !== null,
        liveInside: chat.querySelectorAll('[aria-live], [role="alert"], [role="status"], [role="log"]').length,
      };
    });
    expect(transcript).toEqual({ liveAncestor: false, liveInside: 0 });
    await expect(announcer().getAttribute('aria-live')).resolves.toBe('polite');
    const box = await announcer().boundingBox();
    expect(box!.width).toBeLessThanOrEqual(1);
    expect(box!.height).toBeLessThanOrEqual(1);

    await send(slowTurn);
    await page.locator('.chat').getByText('chunk3').waitFor({ timeout: 60_000 });
    const streaming = await announcer().locator('p').allTextContents();
    expect(streaming.at(-1)).toBe('Agent is working');
    expect(streaming.join('\n')).not.toContain('chunk');
    await page.locator('.status-line[data-activity="idle"]').waitFor({ timeout: 30_000 });
    const finished = await announcer().locator('p').allTextContents();
    expect(finished.slice(-3)).toEqual(['Agent is working', slowReply, 'Turn finished']);
    expect(finished.length).toBeLessThanOrEqual(5);
    await snap(page, 'first-user-06-announced-finished-message');

    // History is shown, not announced again, after a reload.
    await page.reload();
    await page.locator('.chat').getByText('chunk19').waitFor();
    await page.waitForTimeout(500);
    await expect(announcer().textContent()).resolves.toBe('');
  }, 90_000);

  it('stops a running turn on Escape, but not while a dialog is open', async () => {
    await send(longTurn);
    await page.locator('.chat').getByText('tick2').waitFor({ timeout: 60_000 });

    // Escape in the delete dialog only closes the dialog.
    await page.getByRole('button', { name: 'Delete the conversation' }).click();
    await page.getByRole('dialog').getByText('cannot be undone').waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
    await page.waitForTimeout(500);
    expect((await api.request('GET', `/api/conversations/${conversationId}`)).body.running).toBe(true);
    await expect(page.locator('.turn', { hasText: longTurn }).getAttribute('data-status')).resolves.toBe('running');

    await page.getByLabel('Message').focus();
    await page.keyboard.press('Escape');
    const events = await api.readEvents(conversationId, {
      until: (seen) => {
        const started = seen.find((event) => event.data.type === 'turn.started' && event.data.text === longTurn);
        return started !== undefined && seen.some((event) => event.data.type === 'turn.ended' && event.data.turnId === started.data.turnId);
      },
      timeoutMs: 30_000,
    });
    const turnId = events.find((event) => event.data.type === 'turn.started' && event.data.text === longTurn)!.data.turnId;
    expect(events.find((event) => event.data.type === 'turn.ended' && event.data.turnId === turnId)!.data.status).toBe('interrupted');
    await page.locator('.turn[data-status="interrupted"]', { hasText: longTurn }).waitFor();
    await announcer().getByText('Turn stopped').waitFor();
    await expect(page.locator('.turn', { hasText: longTurn }).innerText()).resolves.not.toContain('tick149');
    await snap(page, 'first-user-07-stopped-by-escape');
  }, 90_000);

  it('paints the terminal in the app’s light or dark theme, and reopens the panel on the tab left after a reload', async () => {
    const terminalTab = page.locator('.panel-tabs').getByRole('tab', { name: 'Terminal' });
    await terminalTab.click();
    await page.locator('.terminal-status[data-state="open"]').waitFor({ timeout: 30_000 });
    await page.locator('.xterm-rows', { hasText: 'agent@agentyard' }).waitFor({ timeout: 15_000 });
    await expect(terminalColours()).resolves.toEqual(lightTerminal);
    await snap(page, 'first-user-08-terminal-light');

    await page.getByRole('button', { name: /^Theme/ }).click(); // system → light
    await page.getByRole('button', { name: /^Theme/ }).click(); // light → dark
    await expect(page.evaluate(() => document.documentElement.dataset.theme)).resolves.toBe('dark');
    await expect.poll(terminalColours).toEqual(darkTerminal);
    await snap(page, 'first-user-08-terminal-dark');

    await page.reload();
    await expect.poll(() => page.locator('.panel-tabs').getByRole('tab', { name: 'Terminal' }).getAttribute('aria-selected')).toBe('true');
    await page.locator('.terminal-status[data-state="open"]').waitFor({ timeout: 30_000 });
    await expect.poll(terminalColours).toEqual(darkTerminal);
    await snap(page, 'first-user-08-terminal-tab-after-reload');

    await page.getByRole('button', { name: /^Theme/ }).click(); // dark → system (light here)
    await expect.poll(terminalColours).toEqual(lightTerminal);

    await page.locator('.panel-tabs').getByRole('tab', { name: 'Files' }).click();
    await page.reload();
    await expect.poll(() => page.locator('.panel-tabs').getByRole('tab', { name: 'Files' }).getAttribute('aria-selected')).toBe('true');
    await page.getByRole('button', { name: 'Close the workspace panel' }).click();
    await page.reload();
    await page.getByLabel('Message').waitFor();
    await page.waitForTimeout(300);
    await expect(page.locator('.workspace-panel').count()).resolves.toBe(0);
  }, 90_000);

  it('shows the user’s own usage and quotas, the numbers GET /api/usage and GET /api/quota give', async () => {
    await page.getByRole('link', { name: 'Usage' }).click();
    await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
    const total = (label: string) => page.locator(`.usage-total[data-total="${label}"] dd`);
    const meter = page.getByRole('meter', { name: 'Tokens this month' });
    await total('Total tokens').waitFor();
    await snap(page, 'first-user-09-usage');

    // The page and the API are compared on figures that did not move meanwhile (a stopped turn may still be metered).
    const read = async () => ({
      usage: (await api.request('GET', '/api/usage')).body,
      quota: (await api.request('GET', '/api/quota')).body as { quotas: Array<{ quota: string; limit: number | null; used: number }> },
    });
    let figures = await read();
    for (let attempt = 1; attempt < 5; attempt += 1) {
      await page.reload();
      await total('Total tokens').waitFor();
      await meter.waitFor();
      const again = await read();
      const monthlyUsed = (read: typeof figures) => read.quota.quotas.find((state) => state.quota === 'tokensPerMonth')?.used;
      if (JSON.stringify(again.usage.totals) === JSON.stringify(figures.usage.totals) && monthlyUsed(again) === monthlyUsed(figures)) break;
      figures = again;
    }
    const { usage, quota } = figures;
    expect(usage.totals.totalTokens).toBeGreaterThan(0);
    const formatted = (value: number) => page.evaluate((number) => number.toLocaleString(), value);
    await expect(total('Total tokens').innerText()).resolves.toBe(await formatted(usage.totals.totalTokens));
    await expect(total('Input tokens').innerText()).resolves.toBe(await formatted(usage.totals.inputTokens));
    await expect(total('Output tokens').innerText()).resolves.toBe(await formatted(usage.totals.outputTokens));
    await expect(total('Model requests').innerText()).resolves.toBe(await formatted(usage.totals.requests));
    await expect(page.locator('.usage-rows tbody tr', { hasText: 'Haiku helper' }).count()).resolves.toBeGreaterThan(0);

    const monthly = quota.quotas.find((state) => state.quota === 'tokensPerMonth')!;
    expect(monthly.limit).toBe(50_000_000);
    await expect(meter.getAttribute('aria-valuemax')).resolves.toBe('50000000');
    await expect(meter.getAttribute('aria-valuenow')).resolves.toBe(String(monthly.used));
    await expect(page.locator('.quota[data-quota="tokensPerMonth"] .numbers').innerText()).resolves.toContain(`${await formatted(monthly.used)} of ${await formatted(50_000_000)}`);
    await expect(page.locator('.quota[data-quota="tokensPerDay"]').innerText()).resolves.toContain('no limit');
  }, 60_000);
});
