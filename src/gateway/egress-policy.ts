import { BlockList, isIP } from 'node:net';

/** The ports a domain named without one may be reached on: HTTPS (CONNECT) and plain HTTP. */
export const defaultEgressPorts = [443, 80] as const;

/** One allowed destination: an exact host or every subdomain of a suffix, on one port or the default ones. */
export interface EgressRule {
  host: string;
  /** `*.host`: subdomains of `host` (not `host` itself). */
  subdomains: boolean;
  /** null: the default ports. */
  port: number | null;
}

/** Parses `host`, `*.host`, `host:port` entries; malformed entries are dropped (the API validates them first). */
export function parseEgressRules(domains: readonly string[]): EgressRule[] {
  const rules: EgressRule[] = [];
  for (const entry of domains) {
    const match = /^(\*\.)?([^:*]+?)\.?(?::(\d{1,5}))?$/.exec(entry.trim().toLowerCase());
    if (!match) continue;
    const port = match[3] === undefined ? null : Number(match[3]);
    if (port !== null && (port < 1 || port > 65_535)) continue;
    const host = match[2]!;
    if (isIP(host) !== 0 || !host.includes('.')) continue;
    rules.push({ host, subdomains: match[1] !== undefined, port });
  }
  return rules;
}

/** Lowercases a host name and drops a trailing dot, so `Example.COM.` and `example.com` compare equal. */
export function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}

/** Whether the rules allow host:port. The host must already be normalized. */
export function isAllowedDestination(rules: readonly EgressRule[], host: string, port: number): boolean {
  return rules.some((rule) => {
    const portAllowed = rule.port === null ? (defaultEgressPorts as readonly number[]).includes(port) : rule.port === port;
    if (!portAllowed) return false;
    return rule.subdomains ? host.endsWith(`.${rule.host}`) : host === rule.host;
  });
}

/** True for an IPv4 or IPv6 literal, bracketed or not. */
export function isIpLiteral(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  // Also the shorthand forms that resolvers accept as IPv4 (`127.1`, `0x7f.1`, a bare number).
  return isIP(bare) !== 0 || /^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}$/i.test(bare);
}

const forbiddenV4 = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (and Alibaba's metadata service, 100.100.100.200)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, including the cloud metadata address 169.254.169.254
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments (includes 192.0.0.192, Oracle's metadata)
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved and broadcast
] as const) {
  forbiddenV4.addSubnet(network, prefix, 'ipv4');
}

const forbiddenV6 = new BlockList();
for (const [network, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001::', 32], // Teredo: the IPv4 address inside is obfuscated, so none is trusted
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (includes fd00:ec2::254, AWS's metadata)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  forbiddenV6.addSubnet(network, prefix, 'ipv6');
}

/** The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, or the deprecated compatible form), if any. */
function embeddedIpv4(address: string): string | null {
  const groups = expandIpv6(address);
  if (!groups) return null;
  const v4 = (high: number, low: number): string => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  const zeros = (from: number, to: number): boolean => groups.slice(from, to).every((group) => group === 0);
  if (zeros(0, 5) && groups[5] === 0xffff) return v4(groups[6]!, groups[7]!); // ::ffff:a.b.c.d
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)) return v4(groups[6]!, groups[7]!); // 64:ff9b::a.b.c.d
  if (groups[0] === 0x2002) return v4(groups[1]!, groups[2]!); // 2002:aabb:ccdd::
  if (zeros(0, 6) && !(groups[6] === 0 && groups[7]! <= 1)) return v4(groups[6]!, groups[7]!); // ::a.b.c.d
  return null;
}

function expandIpv6(address: string): number[] | null {
  let text = address.split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const parts = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, -dotted[1]!.length)}${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  if (tail === undefined ? missing !== 0 : missing < 0) return null;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups].map((group) => parseInt(group, 16));
  return groups.length === 8 && groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : null;
}

/**
 * True for an address the egress proxy must never connect to: loopback, private, link-local, cloud metadata,
 * carrier-grade NAT, multicast, reserved, and IPv6 forms that carry such an IPv4 address.
 */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return forbiddenV4.check(address, 'ipv4');
  if (family === 6) {
    const bare = address.split('%')[0]!;
    const embedded = embeddedIpv4(bare);
    if (embedded !== null && forbiddenV4.check(embedded, 'ipv4')) return true;
    return forbiddenV6.check(bare, 'ipv6');
  }
  return true;
}
