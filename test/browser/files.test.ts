import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { text, toolUse } from '../support/scripted-model.ts';
import { buildWebApp, launchBrowser, signUpThroughPage, snap } from './browser.ts';

/** The files panel as a first-time user meets it: where uploads go, big directories, and editing a file. */
describe('files panel in Chromium', () => {
  let test: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let api: ApiClient;
  let conversationId: string;

  beforeAll(async () => {
    buildWebApp();
    test = await startTestPlatform();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await signUpThroughPage(page, test.platform.url, 'first-timer@example.com');
    const cookie = (await context.cookies()).find((candidate) => candidate.name === 'agentyard_session')!;
    api = new ApiClient(test.platform.url, { cookie: `${cookie.name}=${cookie.value}` });
    await page.getByRole('button', { name: 'New conversation' }).first().click();
    await page.getByRole('dialog').getByLabel('Title').fill('Files');
    await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/\/c\/conv_/);
    conversationId = /\/c\/(conv_[\w-]+)/.exec(page.url())![1]!;
    for (const [file, content] of [
      ['docs/guide/intro.md', '# Intro\n'],
      ['docs/readme.md', '# Docs\n'],
      ['notes.txt', 'first line\n'],
    ] as const) {
      const response = await api.request('PUT', `/api/conversations/${conversationId}/files/content?path=${encodeURIComponent(file)}`, content, {
        'content-type': 'application/octet-stream',
      });
      expect(response.status).toBe(201);
    }
    await page.getByRole('button', { name: 'Refresh the file tree' }).click();
    await tree().getByRole('button', { name: 'docs' }).waitFor();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await test?.close();
  });

  const tree = () => page.locator('.file-tree');
  const uploadTarget = () => page.getByTestId('upload-target').innerText();
  const onDisk = (file: string) => readFileSync(path.join(test.workspaceDir(conversationId), file), 'utf8');

  /** Drags a file over the panel, then drops it; answers what the drop overlay said meanwhile. */
  const dropFile = async (name: string, content: string, screenshot?: string): Promise<string> => {
    const transfer = await page.evaluateHandle(
      ({ name, content }) => {
        const data = new DataTransfer();
        data.items.add(new File([content], name, { type: 'text/plain' }));
        return data;
      },
      { name, content },
    );
    const panel = page.locator('.file-panel');
    await panel.dispatchEvent('dragover', { dataTransfer: transfer });
    const overlay = await page.locator('.drop-overlay').innerText();
    if (screenshot) await snap(page, screenshot);
    await panel.dispatchEvent('drop', { dataTransfer: transfer });
    return overlay;
  };

  it('uploads into the folder whose contents show, and says where, never into a collapsed one', async () => {
    expect(await uploadTarget()).toBe('/workspace');
    await tree().getByRole('button', { name: 'docs' }).click();
    await tree().getByRole('button', { name: 'guide' }).waitFor();
    expect(await uploadTarget()).toBe('/workspace/docs');
    await expect(page.locator('.file-row.target').innerText()).resolves.toContain('upload target');
    await snap(page, 'files-01-target-open-folder');

    // Into a nested folder, then its parent collapses: the target is the nearest folder still shown, the root.
    await tree().getByRole('button', { name: 'guide' }).click();
    await tree().getByRole('button', { name: 'intro.md' }).waitFor();
    expect(await uploadTarget()).toBe('/workspace/docs/guide');
    await tree().getByRole('button', { name: 'docs' }).click();
    await expect.poll(() => tree().getByRole('button', { name: 'guide' }).count()).toBe(0);
    expect(await uploadTarget()).toBe('/workspace');
    await expect(page.locator('.file-row.target').count()).resolves.toBe(0);

    expect(await dropFile('dropped.txt', 'dropped by the user\n', 'files-02-dragging-over-root')).toBe('Drop to upload into /workspace');
    await page.locator('.uploads li.done', { hasText: 'dropped.txt' }).waitFor();
    // It landed where the user can see it.
    await tree().getByRole('button', { name: 'dropped.txt' }).waitFor();
    expect(onDisk('dropped.txt')).toBe('dropped by the user\n');
    await snap(page, 'files-03-dropped-into-visible-folder');

    // With docs open again, a drop goes into docs, as the toolbar says.
    await tree().getByRole('button', { name: 'docs' }).click();
    await tree().getByRole('button', { name: 'readme.md' }).waitFor();
    expect(await uploadTarget()).toBe('/workspace/docs');
    expect(await dropFile('more.txt', 'more\n')).toBe('Drop to upload into /workspace/docs');
    await page.locator('.uploads li.done', { hasText: 'docs/more.txt' }).waitFor();
    expect(onDisk('docs/more.txt')).toBe('more\n');
  });

  it('shows a big directory a page at a time, each entry once', async () => {
    // What an agent might leave: 1,203 files in one directory.
    execFileSync('sh', ['-c', 'mkdir -p "$1/many" && cd "$1/many" && seq -f "out-%04g.log" 1 1203 | xargs touch', 'sh', test.workspaceDir(conversationId)]);
    await page.getByRole('button', { name: 'Refresh the file tree' }).click();
    await tree().getByRole('button', { name: 'many' }).click();
    const rows = () => tree().locator('button[title^="many/"]');
    await expect.poll(() => rows().count()).toBe(500);
    const more = tree().getByRole('button', { name: 'Show more of /workspace/many' });
    await more.scrollIntoViewIfNeeded();
    await snap(page, 'files-04-show-more');
    await more.click();
    await expect.poll(() => rows().count()).toBe(1000);
    await more.click();
    await expect.poll(() => rows().count()).toBe(1203);
    await expect(more.count()).resolves.toBe(0);
    const names = await tree().locator('button[title^="many/"]').evaluateAll((buttons) => buttons.map((button) => button.getAttribute('title')));
    expect(new Set(names).size).toBe(1203);
    expect(names[0]).toBe('many/out-0001.log');
    expect(names.at(-1)).toBe('many/out-1203.log');
    // A refresh keeps what was shown: it asks for the pages again, up to the third.
    const thirdPage = page.waitForResponse((response) => response.url().includes('path=many') && response.url().includes('cursor=f%3Aout-1000.log'));
    await page.getByRole('button', { name: 'Refresh the file tree' }).click();
    await thirdPage;
    await expect.poll(() => rows().count()).toBe(1203);
    await tree().getByRole('button', { name: 'many' }).click();
  });

  it('edits and saves a text file, and tells the user instead of overwriting when the agent changed it meanwhile', async () => {
    await tree().getByRole('button', { name: 'notes.txt' }).click();
    const viewer = page.locator('.file-viewer');
    await expect(viewer.locator('.code-view').innerText()).resolves.toBe('first line\n');
    await viewer.getByRole('button', { name: 'Edit this file' }).click();
    const editor = viewer.getByLabel('Contents of notes.txt');
    await editor.fill('first line\nsecond line from the user\n');
    await snap(page, 'files-05-editing');
    await viewer.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => viewer.locator('.code-view').innerText()).toBe('first line\nsecond line from the user\n');
    expect(onDisk('notes.txt')).toBe('first line\nsecond line from the user\n');

    // The user edits again; meanwhile the agent rewrites the file.
    await viewer.getByRole('button', { name: 'Edit this file' }).click();
    await editor.fill('the user’s third version\n');
    test.model.setScript((request, context) =>
      request.lastUserText.includes('rewrite notes')
        ? request.toolResults === 0
          ? toolUse('Bash', { command: 'echo "the agent wrote this" > notes.txt', description: 'rewrite notes' })
          : text('I rewrote the notes.')
        : context.defaultScript(request, context),
    );
    const sent = await api.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'please rewrite notes.txt' });
    expect(sent.status).toBe(202);
    await page.locator('.chat').getByText('I rewrote the notes.').waitFor({ timeout: 90_000 });
    expect(onDisk('notes.txt')).toBe('the agent wrote this\n');
    // The draft survives the tree's refresh after the agent wrote.
    await expect(editor.inputValue()).resolves.toBe('the user’s third version\n');

    await viewer.getByRole('button', { name: 'Save' }).click();
    const alert = viewer.getByRole('alert');
    await alert.getByText('This file changed since you started editing it').waitFor();
    expect(onDisk('notes.txt')).toBe('the agent wrote this\n');
    await expect(editor.inputValue()).resolves.toBe('the user’s third version\n');
    await snap(page, 'files-06-changed-meanwhile');

    await alert.getByRole('button', { name: 'Discard my changes and load the new version' }).click();
    await expect.poll(() => viewer.locator('.code-view').innerText()).toBe('the agent wrote this\n');
    expect(onDisk('notes.txt')).toBe('the agent wrote this\n');
    await snap(page, 'files-07-agent-version-loaded');
  }, 150_000);
});
