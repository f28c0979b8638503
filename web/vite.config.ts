import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/** Initial JavaScript budget (gzipped): what the first page load must fetch before the app can render. */
const initialJsBudgetBytes = 300 * 1024;

/**
 * Writes a .gz beside every compressible file (the server sends it to clients that accept gzip), then checks the
 * initial JavaScript (the entry script and the chunks it preloads) against the budget and prints the figure.
 */
function precompressAndBudget(): Plugin {
  let outDir = '';
  return {
    name: 'agentyard-precompress-and-budget',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    closeBundle() {
      const gzipSizes = new Map<string, number>();
      const walk = (directory: string): void => {
        for (const name of readdirSync(directory)) {
          const file = path.join(directory, name);
          if (statSync(file).isDirectory()) walk(file);
          else if (/\.(js|css|html|svg|json|map)$/.test(name)) {
            const compressed = gzipSync(readFileSync(file), { level: 9 });
            writeFileSync(`${file}.gz`, compressed);
            gzipSizes.set(path.relative(outDir, file), compressed.length);
          }
        }
      };
      walk(outDir);
      const html = readFileSync(path.join(outDir, 'index.html'), 'utf8');
      const initial = [...html.matchAll(/(?:src|href)="\/([^"]+\.js)"/g)].map((match) => match[1]!);
      const total = initial.reduce((sum, file) => sum + (gzipSizes.get(file) ?? 0), 0);
      const report = { initialJsGzipBytes: total, files: initial, budgetBytes: initialJsBudgetBytes };
      writeFileSync(path.join(outDir, 'bundle-report.json'), `${JSON.stringify(report, null, 2)}\n`);
      this.info(`initial JavaScript: ${(total / 1024).toFixed(1)} KiB gzipped (${initial.length} files; budget ${initialJsBudgetBytes / 1024} KiB)`);
      if (total > initialJsBudgetBytes) this.error(`initial JavaScript is ${total} bytes gzipped, over the ${initialJsBudgetBytes} budget`);
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react(), precompressAndBudget()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `npm run dev:web`: the app with hot reload, the API from `npm run dev` on :8080.
    proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true }, '/readyz': 'http://127.0.0.1:8080' },
  },
});
