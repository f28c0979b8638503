/**
 * Benchmark for the web app's transcript: first render and scroll frame times of a long conversation (100 turns,
 * 2,000 events) side by side with a short one (5 turns, 100 events) as the baseline, in Debian's Chromium.
 *
 *   npx tsx bench/web-transcript.ts [--runs N]      (or BENCH_RUNS)
 *
 * Target: the long conversation scrolls with a median frame under 100 ms. Exits 0 whether or not it is met.
 */
import { parseArgs } from 'node:util';
import { buildWebApp, launchBrowser, signUpThroughPage } from '../test/browser/browser.ts';
import { appendFinishedTurns, scrollFrameDurations } from '../test/browser/transcript-load.ts';
import { ApiClient } from '../test/support/api-client.ts';
import { startTestPlatform } from '../test/support/platform.ts';
import { formatMs, summarize, table } from './stats.ts';

const { values } = parseArgs({ args: process.argv.slice(2), options: { runs: { type: 'string' } } });
const runs = Number(values.runs ?? process.env.BENCH_RUNS ?? 5);
const print = (line = ''): void => void process.stdout.write(`${line}\n`);

buildWebApp();
const test = await startTestPlatform();
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  await signUpThroughPage(page, test.platform.url, 'bench@example.com');
  const cookie = (await page.context().cookies()).find((entry) => entry.name === 'agentyard_session')!;
  const api = new ApiClient(test.platform.url, { cookie: `${cookie.name}=${cookie.value}` });

  const results: Record<string, { render: number[]; frames: number[] }> = {};
  for (const [name, turns] of [['5 turns (baseline)', 5], ['100 turns', 100]] as const) {
    const conversation = (await api.request('POST', '/api/conversations', { title: name })).body;
    await appendFinishedTurns(test.platform.store, conversation.id, turns);
    const result = { render: [] as number[], frames: [] as number[] };
    for (let run = 0; run < runs; run += 1) {
      const startedAt = performance.now();
      await page.goto(`${test.platform.url}/c/${conversation.id}`);
      await page.getByText(`marker-${turns - 1}`, { exact: true }).waitFor({ timeout: 60_000 });
      result.render.push(performance.now() - startedAt);
      result.frames.push(...(await scrollFrameDurations(page)));
    }
    results[name] = result;
  }

  print(`Web transcript, ${runs} runs each (first render: navigation to the last answer on screen; frames: 40 scroll steps per run)`);
  print();
  const rows: string[][] = [['conversation', 'render p50', 'render p95', 'frame p50', 'frame p95', 'frame max']];
  for (const [name, result] of Object.entries(results)) {
    const render = summarize(result.render);
    const frames = summarize(result.frames);
    rows.push([name, formatMs(render.p50), formatMs(render.p95), formatMs(frames.p50), formatMs(frames.p95), formatMs(frames.max)]);
  }
  print(table(rows));
  const long = summarize(results['100 turns']!.frames);
  print();
  print(`target: median scroll frame under 100 ms for 100 turns: ${long.p50 < 100 ? 'met' : 'NOT met'} (${formatMs(long.p50)})`);
} finally {
  await browser.close();
  await test.close();
}
