import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { text, toolUse } from '../support/scripted-model.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { buildWebApp, launchBrowser, snap } from './browser.ts';

const slowTurn = 'Count slowly please SCN_SLOW';
const slowReply = Array.from({ length: 20 }, (_, position) => `chunk${position} `).join('');

/** The scenarios of the web app, in order, against a real server, the real CLI and the scripted model. */
describe('web app in Chromium', () => {
  let test: TestPlatform;
  let browser: Browser;
  let alice: BrowserContext;
  let page: Page;
  let conversationUrl = '';

  beforeAll(async () => {
    buildWebApp();
    // A small workspace disk, so that scenario 6 can fill it.
    test = await startTestPlatform({ env: { AGENTYARD_WORKSPACE_DISK_MB: '64' } });
    test.model.setScript((request, context) => {
      if (request.lastUserText.includes('SCN_MARKDOWN')) {
        return text(['Here is **TypeScript**:\n\n```ts\nconst answer: number = 42;\nexport function double(value: number) {\n  return value * 2;\n}\n```\n', '\nAnd a list:\n\n- one\n- two\n']);
      }
      if (request.lastUserText.includes('SCN_FILL')) {
        return request.toolResults === 0
          ? toolUse('Bash', { command: 'head -c 100000000 /dev/zero > big.bin; echo status=$?' }, { text: 'Writing a big file.' })
          : text('The disk is full.');
      }
      return context.defaultScript(request, context);
    });
    browser = await launchBrowser();
    alice = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    page = await alice.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await test?.close();
  });

  const chat = (target: Page = page) => target.locator('.chat');
  const send = async (message: string, target: Page = page): Promise<void> => {
    const box = target.getByLabel('Message');
    await box.fill(message);
    await box.press('Enter');
  };

  it('1: signs up, creates a conversation, streams a turn that runs Bash and Write, and shows the file', async () => {
    await page.goto(test.platform.url);
    await page.getByRole('tab', { name: 'Create account' }).click();
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill('correct horse battery');
    await snap(page, '01-register');
    await page.locator('form button[type=submit]').click();
    await page.getByRole('heading', { name: 'No conversations yet' }).waitFor();
    // The first account is the administrator.
    await expect(page.getByRole('link', { name: 'Admin' }).isVisible()).resolves.toBe(true);
    await snap(page, '01-empty-state');

    await page.getByRole('button', { name: 'New conversation' }).first().click();
    await page.getByRole('dialog').getByLabel('Title').fill('First task');
    await snap(page, '01-new-conversation-dialog');
    await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/\/c\/conv_/);
    conversationUrl = page.url();
    await page.getByRole('heading', { name: 'Say hello' }).waitFor();
    // The file panel is open on a wide screen, and empty.
    await page.getByText('No files yet').waitFor();

    // Shift+Enter adds a line; Enter sends.
    const box = page.getByLabel('Message');
    await box.fill('SCN_TOOLS BASH<<echo hello-from-bash && echo hi > hello.txt>> WRITE<<notes/result.txt|written by the agent>>');
    await box.press('Shift+Enter');
    await box.pressSequentially('second line');
    expect(await box.inputValue()).toMatch(/>>\nsecond line$/);
    await box.press('Enter');
    await chat().getByText('All done after 2 tool results.').waitFor({ timeout: 90_000 });
    expect(await box.inputValue()).toBe('');

    const bash = page.locator('.tool-card[data-tool="Bash"]');
    await expect(bash.locator('.tool-command').innerText()).resolves.toContain('echo hello-from-bash');
    await expect(bash.locator('.tool-output').innerText()).resolves.toContain('hello-from-bash');
    const write = page.locator('.tool-card[data-tool="Write"]');
    await expect(write.locator('.tool-summary').innerText()).resolves.toBe('/workspace/notes/result.txt');
    await expect(write.locator('.diff-line.added').innerText()).resolves.toContain('written by the agent');
    await expect(chat().getByText('I will run a command.').isVisible()).resolves.toBe(true);
    await expect(page.locator('.turn-usage').innerText()).resolves.toMatch(/\d+ in · \d+ out/);
    await expect(page.locator('.status-line').innerText()).resolves.toContain('Idle');
    // The Bash output collapses.
    await bash.locator('summary', { hasText: 'Output' }).click();
    await expect(bash.locator('.tool-output').isVisible()).resolves.toBe(false);
    await bash.locator('summary', { hasText: 'Output' }).click();

    // The tree refreshed by itself when the agent wrote.
    const tree = page.locator('.file-tree');
    await tree.getByRole('button', { name: 'notes' }).waitFor();
    await tree.getByRole('button', { name: 'hello.txt' }).waitFor();
    await tree.getByRole('button', { name: 'notes' }).click();
    await tree.getByRole('button', { name: 'result.txt' }).click();
    await expect(page.locator('.file-viewer .code-view').innerText()).resolves.toBe('written by the agent');
    await snap(page, '01-turn-with-tools-and-file');

    // Markdown with highlighted code.
    await send('Show me SCN_MARKDOWN');
    await chat().getByText('And a list:').waitFor({ timeout: 60_000 });
    await page.locator('.markdown pre code.hljs .hljs-keyword').first().waitFor();
    await expect(page.locator('.markdown strong').first().innerText()).resolves.toBe('TypeScript');
    await snap(page, '01-markdown-highlighted');
  }, 180_000);

  it('2: keeps streaming across a reload and a network drop, with no event lost or shown twice, and live in a second tab', async () => {
    const other = await alice.newPage();
    await other.goto(conversationUrl);
    await chat(other).getByText('All done after 2 tool results.').waitFor();

    await send(slowTurn);
    await chat().getByText('chunk2').waitFor({ timeout: 60_000 });
    await snap(page, '02-slow-turn-before-reload');
    await page.reload();
    // After the reload the turn is still streaming: later chunks arrive live.
    await chat().getByText('chunk8').waitFor({ timeout: 30_000 });
    // Still running unless its last chunk already arrived (a slow reload on a loaded machine).
    const status = await page.locator('.status-line').innerText();
    if ((await chat().getByText('chunk19').count()) === 0) expect(status).toMatch(/Writing|Thinking/);
    await snap(page, '02-slow-turn-after-reload');

    // The network drops mid-turn; on its return the stream resumes after the last event it had.
    const resumes: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/events?after=')) resumes.push(new URL(request.url()).searchParams.get('after')!);
    });
    await alice.setOffline(true);
    await page.waitForTimeout(1200);
    await alice.setOffline(false);
    await chat().getByText('chunk19').waitFor({ timeout: 30_000 });
    await page.locator('.status-line', { hasText: 'Idle' }).waitFor({ timeout: 30_000 });
    expect(resumes.length).toBeGreaterThan(0);
    expect(Number(resumes.at(-1))).toBeGreaterThan(0);

    const slowTurnBlock = (target: Page) => target.locator('.turn', { hasText: slowTurn });
    for (const target of [page, other]) {
      await expect(slowTurnBlock(target).count()).resolves.toBe(1);
      await expect(slowTurnBlock(target).locator('.markdown').innerText()).resolves.toBe(slowReply.trim());
      await expect(target.locator('.turn').count()).resolves.toBe(3);
    }
    await snap(other, '02-second-tab-live');
    await other.close();
  }, 120_000);

  it('3: runs ls /workspace in the terminal and shows the file from step 1', async () => {
    await page.getByRole('tab', { name: 'Terminal' }).click();
    await page.locator('.terminal-status[data-state="open"]').waitFor({ timeout: 30_000 });
    await page.locator('.xterm-rows', { hasText: 'agent@agentyard' }).waitFor({ timeout: 15_000 });
    await page.locator('.terminal-screen').click();
    await page.keyboard.type('ls /workspace && stty size');
    await page.keyboard.press('Enter');
    const rows = page.locator('.xterm-rows');
    await rows.getByText('result.txt').or(rows.getByText('notes')).first().waitFor({ timeout: 15_000 });
    // The size line may render a frame after the listing.
    await expect.poll(() => rows.innerText(), { timeout: 15_000 }).toMatch(/^\d{1,3} \d{2,3}$/m);
    const screen = await rows.innerText();
    expect(screen).toContain('notes');
    expect(screen).toContain('hello.txt');
    expect(screen).toMatch(/^\d{1,3} \d{2,3}$/m);
    await snap(page, '03-terminal-ls-workspace');

    // A narrower window resizes the shell's terminal.
    const before = /^(\d{1,3}) (\d{2,3})$/m.exec(screen)!;
    await page.setViewportSize({ width: 1150, height: 700 });
    // The resize reaches the shell asynchronously: ask until the new size shows.
    await expect
      .poll(
        async () => {
          await page.keyboard.type('clear; stty size');
          await page.keyboard.press('Enter');
          await page.waitForTimeout(500);
          const after = /^(\d{1,3}) (\d{2,3})$/m.exec(await rows.innerText());
          return after ? `${after[1]} ${after[2]}` : 'none';
        },
        { timeout: 15_000 },
      )
      .not.toMatch(new RegExp(`^(none|${before[1]} ${before[2]})$`));
    await page.setViewportSize({ width: 1360, height: 860 });

    // Paste (Ctrl+Shift+V) and copy (Ctrl+Shift+C of a selection) go through the clipboard.
    await alice.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: test.platform.url });
    await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((2+3))'));
    await page.locator('.terminal-screen').click();
    await page.keyboard.press('Control+Shift+V');
    await expect.poll(() => rows.innerText()).toContain('echo pasted-$((2+3))');
    await page.keyboard.press('Enter');
    await expect.poll(() => rows.innerText(), { timeout: 10_000 }).toMatch(/^pasted-5\s*$/m);
    await rows.getByText('pasted-5', { exact: true }).dblclick({ force: true });
    await page.keyboard.press('Control+Shift+C');
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toMatch(/pasted-5|pasted/);

    // A reload reattaches to the same shell: its variables and its output are still there.
    await page.keyboard.type('export MARK=survives-reload');
    await page.keyboard.press('Enter');
    await page.reload();
    // The panel reopens on the Terminal tab it was left on.
    await page.getByRole('tab', { name: 'Terminal', selected: true }).waitFor();
    await page.locator('.terminal-status[data-state="open"]').waitFor({ timeout: 30_000 });
    await rows.getByText('export MARK=survives-reload').first().waitFor();
    await page.locator('.terminal-screen').click();
    await page.keyboard.type('echo "mark is $MARK"');
    await page.keyboard.press('Enter');
    await rows.getByText('mark is survives-reload').waitFor();
    await snap(page, '03-terminal-after-reload');
    await page.getByRole('tab', { name: 'Files' }).click();
  }, 90_000);

  it('4: Stop interrupts a slow turn, and the next message works', async () => {
    await send(`Again ${slowTurn}`);
    await chat().locator('.turn', { hasText: `Again ${slowTurn}` }).getByText('chunk1').waitFor({ timeout: 60_000 });
    await snap(page, '04-slow-turn-running');
    await page.getByRole('button', { name: 'Stop the running turn' }).click();
    await page.locator('.turn[data-status="interrupted"]').waitFor({ timeout: 30_000 });
    await page.locator('.status-line', { hasText: 'Idle' }).waitFor();
    const interrupted = page.locator('.turn', { hasText: `Again ${slowTurn}` });
    await expect(interrupted.innerText()).resolves.not.toContain('chunk19');
    await expect(interrupted.getByRole('button', { name: 'Retry' }).isVisible()).resolves.toBe(true);
    await snap(page, '04-stopped');

    await send('hello after stop');
    await chat().getByText('You said: hello after stop').waitFor({ timeout: 60_000 });
    await snap(page, '04-next-message-works');
  }, 120_000);

  it('5: a second user cannot see the first user’s conversations, and their URL shows not found', async () => {
    const bob = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    const bobPage = await bob.newPage();
    await bobPage.goto(test.platform.url);
    await bobPage.getByRole('tab', { name: 'Create account' }).click();
    await bobPage.getByLabel('Email').fill('bob@example.com');
    await bobPage.getByLabel('Password').fill('another long password');
    await bobPage.locator('form button[type=submit]').click();
    await bobPage.getByRole('heading', { name: 'No conversations yet' }).waitFor();
    await expect(bobPage.locator('.conversation-link').count()).resolves.toBe(0);
    await expect(bobPage.getByRole('link', { name: 'Admin' }).count()).resolves.toBe(0);
    await snap(bobPage, '05-second-user-empty');

    await bobPage.goto(conversationUrl);
    await bobPage.getByRole('heading', { name: 'Conversation not found' }).waitFor();
    await expect(bobPage.locator('body').innerText()).resolves.not.toContain('First task');
    await snap(bobPage, '05-second-user-not-found');

    // Signing out ends the session for good: even a copy of the old cookie is refused.
    const oldCookie = (await bob.cookies()).find((cookie) => cookie.name === 'agentyard_session');
    expect(oldCookie?.value).toBeTruthy();
    const replay = () => fetch(`${test.platform.url}/api/auth/me`, { headers: { cookie: `agentyard_session=${oldCookie!.value}` } });
    expect((await replay()).status).toBe(200);
    await bobPage.getByRole('button', { name: 'Sign out' }).click();
    await bobPage.getByRole('tab', { name: 'Sign in' }).waitFor();
    await bobPage.reload();
    await bobPage.getByRole('tab', { name: 'Sign in' }).waitFor();
    expect((await bob.request.get(`${test.platform.url}/api/auth/me`)).status()).toBe(401);
    expect((await replay()).status).toBe(401);
    await snap(bobPage, '05-signed-out');
    await bob.close();
  }, 60_000);

  it('6: a command that fills the workspace shows a clear notice in place, and the turn still completes', async () => {
    await send('Write a big file SCN_FILL');
    const turn = chat().locator('.turn', { hasText: 'Write a big file SCN_FILL' });
    await turn.and(page.locator('[data-status="completed"]')).waitFor({ timeout: 60_000 });
    const notice = turn.locator('.turn-error');
    await expect(notice.innerText()).resolves.toMatch(/WORKSPACE_FULL.*full \(its limit is 64 MiB\)/s);
    await expect(notice.getByRole('button', { name: 'Retry' }).count()).resolves.toBe(0);
    await turn.getByText('The disk is full.').waitFor();
    await snap(page, '06-workspace-full');
  }, 90_000);
});
