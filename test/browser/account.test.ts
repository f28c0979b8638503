import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { buildWebApp, launchBrowser, signUpThroughPage, snap } from './browser.ts';

const password = 'correct horse battery';
const newPassword = 'a brand new password';

describe('the Account page in Chromium', () => {
  let test: TestPlatform;
  let browser: Browser;
  let contexts: BrowserContext[] = [];

  beforeAll(async () => {
    buildWebApp();
    test = await startTestPlatform();
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    contexts = [];
    await browser?.close();
    await test?.close();
  });

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    return page;
  }

  it('changes the password: a wrong current one is explained, the right one signs out the other browser and keeps this one', async () => {
    const page = await newPage();
    await signUpThroughPage(page, test.platform.url, 'ada@example.com', password);
    // The same account signed in from a second browser.
    const other = await newPage();
    await other.goto(test.platform.url);
    await other.getByRole('tab', { name: 'Sign in' }).click();
    await other.getByLabel('Email').fill('ada@example.com');
    await other.getByLabel('Password').fill(password);
    await other.locator('form button[type=submit]').click();
    await other.getByRole('heading', { name: 'No conversations yet' }).waitFor();

    await page.getByRole('link', { name: 'Account' }).click();
    const form = page.getByRole('form', { name: 'Change password' });
    await form.getByLabel('Current password').fill('not my password');
    await form.getByLabel('New password', { exact: true }).fill(newPassword);
    await form.getByLabel('Repeat new password').fill(newPassword);
    await form.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('the current password is wrong').waitFor();

    await form.getByLabel('Current password').fill(password);
    await form.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed.').waitFor();
    await expect(form.getByLabel('Current password').inputValue()).resolves.toBe('');
    await snap(page, '30-account-password-changed');

    // This browser got a new session cookie and stays signed in; the other one is signed out.
    await page.reload();
    await page.getByRole('heading', { name: 'Account' }).waitFor();
    await other.reload();
    await other.getByRole('tab', { name: 'Sign in' }).waitFor();
    expect((await test.api.request('POST', '/api/auth/login', { email: 'ada@example.com', password })).status).toBe(401);
    expect((await test.api.request('POST', '/api/auth/login', { email: 'ada@example.com', password: newPassword })).status).toBe(200);
  });
});
