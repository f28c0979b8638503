import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (apt-get install chromium); playwright-core never downloads a browser of its own. */
export const chromiumPath = process.env.AGENTYARD_CHROMIUM ?? '/usr/bin/chromium';

/** Flags for a root, offline, headless machine: no sandbox (root), no GPU, and no background calls home. */
const flags = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

const root = path.resolve(import.meta.dirname, '../..');
export const artifactsDir = path.join(root, 'test-artifacts', 'browser');

/** Builds web/dist if its sources changed (a no-op when `npm test` already did). */
export function buildWebApp(): void {
  execFileSync('bash', [path.join(root, 'scripts/build-web.sh')], { stdio: 'inherit', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' } });
}

/** Headless Chromium with a fresh profile (Playwright gives every launch a new temporary user-data-dir). */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath}: apt-get install -y chromium (or npm test, which installs it)`);
  await mkdir(artifactsDir, { recursive: true });
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: flags, env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TZ: 'UTC' } });
}

/** Saves a screenshot of the page as test-artifacts/browser/<name>.png. */
export async function snap(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(artifactsDir, `${name}.png`), fullPage: false });
}

/** Creates an account through the sign-in page and waits for the empty conversation list. */
export async function signUpThroughPage(page: Page, url: string, email: string, password = 'correct horse battery'): Promise<void> {
  await page.goto(url);
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.locator('form button[type=submit]').click();
  await page.getByRole('heading', { name: 'No conversations yet' }).waitFor();
}
