/**
 * Compares the tests a vitest run skipped with the list the project expects (test/expected-skips.txt), so that a
 * skip decided at run time (a backend missing, a limit not detected) cannot turn CI green silently.
 *
 *   npx tsx scripts/check-skips.ts <vitest JSON report>
 *
 * With AGENTYARD_TEST_SKIPS=strict (set by .ci/run) a difference fails; otherwise the skipped tests are listed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface Report {
  testResults: Array<{ name: string; assertionResults: Array<{ fullName: string; status: string }> }>;
}

const root = path.resolve(import.meta.dirname, '..');
const reportPath = process.argv[2];
if (!reportPath) {
  process.stderr.write('usage: check-skips.ts <vitest JSON report>\n');
  process.exit(2);
}
const report = JSON.parse(readFileSync(reportPath, 'utf8')) as Report;
const skipped = report.testResults
  .flatMap((file) =>
    file.assertionResults
      .filter((test) => test.status === 'skipped' || test.status === 'pending' || test.status === 'todo')
      .map((test) => `${path.relative(root, file.name)} > ${normalise(test.fullName)}`),
  )
  .sort();

/** Each line: `<file> > <full test name>`, then an optional `  # reason`; blank lines and `#` lines are comments. */
const expectedFile = path.join(root, 'test', 'expected-skips.txt');
const expected = readFileSync(expectedFile, 'utf8')
  .split('\n')
  .map((line) => line.replace(/\s+#.*$/, '').trim())
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map(normalise)
  .sort();

const unexpected = skipped.filter((name) => !expected.includes(name));
const missing = expected.filter((name) => !skipped.includes(name));
process.stdout.write(`skipped tests: ${skipped.length}${skipped.map((name) => `\n  ${name}`).join('')}\n`);
if (unexpected.length === 0 && missing.length === 0) {
  process.stdout.write('the skipped tests are exactly the expected ones\n');
  process.exit(0);
}
for (const name of unexpected) process.stdout.write(`UNEXPECTED SKIP: ${name}\n`);
for (const name of missing) process.stdout.write(`EXPECTED SKIP THAT RAN (update ${path.relative(root, expectedFile)}): ${name}\n`);
process.exit(process.env.AGENTYARD_TEST_SKIPS === 'strict' ? 1 : 0);

/** Titles may carry a run-time reason after "(skipped: …)" or ": skipped, …"; the name alone is compared. */
function normalise(name: string): string {
  return name.replace(/\s*\(skipped: [^)]*\)/g, '').replace(/: skipped, [^>]*/g, '').replace(/\s+/g, ' ').trim();
}
