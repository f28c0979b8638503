import { readFileSync } from 'node:fs';

/** The platform's version, from package.json (replicas report it; the status route shows it). */
export const platformVersion: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
