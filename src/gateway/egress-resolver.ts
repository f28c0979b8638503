import { promises as dns } from 'node:dns';
import { normalizeHost } from './egress-policy.ts';

/** Turns a host name into the addresses the egress proxy may connect to. */
export type EgressResolver = (host: string) => Promise<string[]>;

export interface EgressResolverOptions {
  /** Fixed answers checked first, like /etc/hosts (names lowercased). */
  hosts?: Record<string, string[]>;
  /** DNS servers to ask (`ip` or `ip:port`, `[ipv6]:port`); none: the system resolver (getaddrinfo). */
  dnsServers?: string[];
  /** Per query (default 3000 ms). */
  timeoutMs?: number;
}

/**
 * The egress proxy's resolver. Every address it returns is checked before use, and the proxy connects to that
 * address itself, so a name cannot resolve one way at the check and another at the connection.
 */
export function createEgressResolver(options: EgressResolverOptions = {}): EgressResolver {
  const hosts = new Map(Object.entries(options.hosts ?? {}).map(([name, addresses]) => [normalizeHost(name), addresses]));
  const timeoutMs = options.timeoutMs ?? 3000;
  let resolver: dns.Resolver | null = null;
  if (options.dnsServers && options.dnsServers.length > 0) {
    resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
    resolver.setServers(options.dnsServers);
  }
  return async (name) => {
    const host = normalizeHost(name);
    const fixed = hosts.get(host);
    if (fixed) return [...fixed];
    if (resolver) {
      const answers = await Promise.all([resolver.resolve4(host).catch(() => []), resolver.resolve6(host).catch(() => [])]);
      return answers.flat();
    }
    const found = await withTimeout(dns.lookup(host, { all: true, verbatim: true }), timeoutMs).catch(() => []);
    return found.map((entry) => entry.address);
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('DNS lookup timed out')), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
