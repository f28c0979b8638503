import { describe, expect, it } from 'vitest';
import { isAllowedDestination, isForbiddenAddress, isIpLiteral, normalizeHost, parseEgressRules } from './egress-policy.ts';

describe('egress rules', () => {
  const rules = parseEgressRules(['packages.example.com', '*.github.com', 'example.com:8443', 'Upper.Example.ORG.']);

  it('allows an exact host on the default ports only', () => {
    expect(isAllowedDestination(rules, 'packages.example.com', 443)).toBe(true);
    expect(isAllowedDestination(rules, 'packages.example.com', 80)).toBe(true);
    expect(isAllowedDestination(rules, 'packages.example.com', 22)).toBe(false);
    expect(isAllowedDestination(rules, 'evil-packages.example.com', 443)).toBe(false);
    expect(isAllowedDestination(rules, 'packages.example.com.evil.com', 443)).toBe(false);
  });

  it('allows subdomains of a wildcard, but not the bare domain or look-alikes', () => {
    expect(isAllowedDestination(rules, 'api.github.com', 443)).toBe(true);
    expect(isAllowedDestination(rules, 'a.b.github.com', 443)).toBe(true);
    expect(isAllowedDestination(rules, 'github.com', 443)).toBe(false);
    expect(isAllowedDestination(rules, 'notgithub.com', 443)).toBe(false);
  });

  it('allows a host named with a port on that port only', () => {
    expect(isAllowedDestination(rules, 'example.com', 8443)).toBe(true);
    expect(isAllowedDestination(rules, 'example.com', 443)).toBe(false);
  });

  it('normalizes case and trailing dots', () => {
    expect(isAllowedDestination(rules, normalizeHost('UPPER.example.org.'), 443)).toBe(true);
  });

  it('allows nothing without rules, and drops IP and single-label entries', () => {
    expect(isAllowedDestination([], 'packages.example.com', 443)).toBe(false);
    expect(parseEgressRules(['10.0.0.1', 'localhost', '[::1]', '*.1.2.3.4', 'ok.example:99999'])).toEqual([]);
  });
});

describe('isIpLiteral', () => {
  it('recognizes IPv4, IPv6 and the shorthand forms resolvers accept', () => {
    for (const literal of ['1.2.3.4', '127.1', '2130706433', '0x7f.0.0.1', '::1', '[::1]', '[2001:db8::1]', 'fe80::1']) {
      expect(isIpLiteral(literal), literal).toBe(true);
    }
    for (const name of ['example.com', '1.2.3.4.nip.io', 'a1.b2', 'xn--e1afmkfd.xn--p1ai']) expect(isIpLiteral(name), name).toBe(false);
  });
});

describe('isForbiddenAddress', () => {
  it('refuses loopback, private, link-local, metadata and other internal ranges', () => {
    for (const address of [
      '127.0.0.1',
      '127.255.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.100.100.200',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fd00:ec2::254',
      'fc00::1',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      '2002:0a00:0001::1',
      '2001:0:4136:e378::1',
      'not-an-address',
    ]) {
      expect(isForbiddenAddress(address), address).toBe(true);
    }
  });

  it('allows public addresses, IPv4 and IPv6', () => {
    for (const address of ['93.184.216.34', '203.0.113.10', '172.32.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:93.184.216.34', '2002:5db8:d822::1']) {
      expect(isForbiddenAddress(address), address).toBe(false);
    }
  });
});
