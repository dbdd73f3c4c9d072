/**
 * The pure parts of guests' outbound HTTP (src/sandbox/http/): allowlist patterns and their
 * matching, the combination of a tenant's grant and a manifest's ask, the special-address
 * guard, and the strict parsing of a guest's request.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AddressGuard } from '../../src/sandbox/http/addresses.ts';
import { parseGuestRequest, parseUrl } from '../../src/sandbox/http/guest-request.ts';
import {
  allowlistRefusal,
  matchesPattern,
  parseHostPattern,
  pluginHttpConfig,
  resolveHttpPolicy,
  tenantHttpConfig,
} from '../../src/sandbox/http/policy.ts';

const url = (s: string) => new URL(s);

describe('host patterns', () => {
  test('scheme, host and port, with their defaults', () => {
    const p = parseHostPattern('api.example.com');
    assert.deepEqual([p.scheme, p.host, p.port], ['https', 'api.example.com', null]);
    assert.ok(matchesPattern(url('https://api.example.com/x'), p));
    assert.ok(matchesPattern(url('https://api.example.com:443/x'), p));
    assert.ok(!matchesPattern(url('http://api.example.com/x'), p), 'scheme defaults to https');
    assert.ok(!matchesPattern(url('https://api.example.com:8443/x'), p), 'port defaults to 443');
    assert.ok(!matchesPattern(url('https://evil-api.example.com/'), p));

    const any = parseHostPattern('*://127.0.0.1:*');
    assert.ok(matchesPattern(url('http://127.0.0.1:8080/'), any));
    assert.ok(matchesPattern(url('https://127.0.0.1/'), any));
  });

  test('wildcards match subdomains only, never the suffix itself or an IP', () => {
    const p = parseHostPattern('https://*.example.com');
    assert.ok(matchesPattern(url('https://a.example.com/'), p));
    assert.ok(matchesPattern(url('https://a.b.example.com/'), p));
    assert.ok(!matchesPattern(url('https://example.com/'), p));
    assert.ok(!matchesPattern(url('https://badexample.com/'), p));
    assert.ok(!matchesPattern(url('https://example.com.evil.net/'), p));
  });

  test('hosts are compared after URL normalisation (case, IDN, IPv4 spellings)', () => {
    assert.equal(parseHostPattern('HTTP://API.Example.COM').host, 'api.example.com');
    assert.equal(parseHostPattern('http://bücher.de').host, 'xn--bcher-kva.de');
    const p = parseHostPattern('http://127.0.0.1:80');
    assert.ok(matchesPattern(url('http://0x7f.1/'), p));
    assert.ok(matchesPattern(url('http://2130706433/'), p));
    assert.ok(matchesPattern(url('http://[::1]/'), parseHostPattern('http://[::1]')));
  });

  test('malformed entries are refused with the entry named', () => {
    for (const bad of [
      'ftp://x.com',
      'http://x.com/path',
      'http://*x.com',
      'x.com:99999',
      '',
      'a b',
    ]) {
      assert.throws(() => parseHostPattern(bad), /host pattern|out of range|not a valid host/, bad);
    }
  });

  test('a URL needs the tenant and the manifest: a manifest only narrows; limits are the minimum; methods the intersection', () => {
    const policy = resolveHttpPolicy(
      pluginHttpConfig({
        allowedHosts: ['https://*.example.com', 'https://other.org'],
        methods: ['GET', 'POST', 'DELETE'],
        limits: { timeoutMs: 60_000, requestsPerCall: 3 },
      }),
      tenantHttpConfig({
        allowedHosts: ['https://api.example.com'],
        methods: ['GET', 'POST'],
        limits: { timeoutMs: 10_000 },
      }),
    );
    assert.equal(allowlistRefusal(url('https://api.example.com/a'), policy), null);
    assert.match(allowlistRefusal(url('https://other.org/'), policy) ?? '', /tenant's allowlist/);
    assert.deepEqual(policy.methods, ['GET', 'POST']);
    assert.equal(policy.limits.timeoutMs, 10_000);
    assert.equal(policy.limits.requestsPerCall, 3);

    const narrow = resolveHttpPolicy(
      pluginHttpConfig({ allowedHosts: ['https://x.example.com'] }),
      tenantHttpConfig({ allowedHosts: ['https://*.example.com'] }),
    );
    assert.match(
      allowlistRefusal(url('https://y.example.com/'), narrow) ?? '',
      /plugin's allowlist/,
    );
    assert.deepEqual(
      narrow.methods,
      ['GET', 'HEAD'],
      'a manifest that names no methods gets GET and HEAD',
    );
  });

  test('a tenant config with a bad allowance is refused naming the field', () => {
    assert.throws(
      () => tenantHttpConfig({ allowPrivate: ['10.0.0.0/33'] }),
      (e: Error & { field?: string }) => {
        assert.equal(e.field, '/allowPrivate/0');
        return true;
      },
    );
    assert.throws(
      () => tenantHttpConfig({ allowedHosts: ['ok.com', 'bad/path'] }),
      (e: Error & { field?: string }) => {
        assert.equal(e.field, '/allowedHosts/1');
        return true;
      },
    );
  });
});

describe('special addresses', () => {
  const none = new AddressGuard([]);
  test('loopback, private, link-local, metadata, CGNAT, multicast, reserved, unspecified, mapped and translated forms are refused', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.255.254',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '198.18.0.1',
      '::1',
      '::',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      'fe80::1',
      'fc00::1',
      'fd00:ec2::254',
      '64:ff9b::7f00:1',
      '2002:7f00:1::',
      'ff02::1',
    ]) {
      assert.match(none.refusal(a) ?? '', /special address/, a);
    }
  });

  test('public addresses pass; the allowance opens exactly its block', () => {
    for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111'])
      assert.equal(none.refusal(a), null, a);
    const lo = new AddressGuard(['127.0.0.1', '10.0.0.0/8']);
    assert.equal(lo.refusal('127.0.0.1'), null);
    assert.equal(lo.refusal('::ffff:127.0.0.1'), null);
    assert.equal(lo.refusal('10.200.0.1'), null);
    assert.match(lo.refusal('127.0.0.2') ?? '', /special/);
    assert.match(lo.refusal('192.168.0.1') ?? '', /special/);
  });
});

describe('a guest request', () => {
  const policy = resolveHttpPolicy(
    pluginHttpConfig({ allowedHosts: ['*://*:*'], methods: ['GET', 'POST'] }),
    tenantHttpConfig({ allowedHosts: ['*://*:*'] }),
  );
  const parse = (v: unknown) => parseGuestRequest(JSON.stringify(v), policy);

  test('the PDKs’ shape parses; the method defaults to GET and is case-insensitive', () => {
    const r = parse({ url: 'http://example.com/a?b=1#frag', headers: { 'X-A': 'b' } });
    assert.ok(r.ok);
    assert.equal(r.request.method, 'GET');
    assert.equal(r.request.url.href, 'http://example.com/a?b=1', 'the fragment is not sent');
    assert.deepEqual(r.request.headers, [['X-A', 'b']]);
    const p = parse({ url: 'https://example.com', method: 'post' });
    assert.ok(p.ok && p.request.method === 'POST');
  });

  test('refusals: not JSON, control characters, credentials, schemes, methods, host-owned and injected headers', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ url: 'http://exa\nmple.com/' }, 'invalid_request', /control characters/],
      [{ url: 'http://exa\tmple.com/' }, 'invalid_request', /control characters/],
      [{ url: 'http://u:p@example.com/' }, 'invalid_request', /credentials/],
      [{ url: 'http://@example.com/' }, 'invalid_request', /./],
      [{ url: 'gopher://example.com/' }, 'denied', /scheme gopher:/],
      [{ url: '/relative' }, 'invalid_request', /absolute URL/],
      [{ url: 'http://example.com', method: 'DELETE' }, 'denied', /DELETE is not allowed/],
      [{ url: 'http://example.com', method: 'BREW' }, 'invalid_request', /not supported/],
      [{ url: 'http://example.com', headers: { 'a b': 'c' } }, 'invalid_request', /token/],
      [{ url: 'http://example.com', headers: { a: 'x\r\nEvil: 1' } }, 'invalid_request', /control/],
      [{ url: 'http://example.com', headers: { a: 'x\u0000' } }, 'invalid_request', /control/],
      [{ url: 'http://example.com', headers: { a: 'ĀĀ' } }, 'invalid_request', /control/],
      [
        { url: 'http://example.com', headers: { 'Transfer-Encoding': 'chunked' } },
        'invalid_request',
        /set by the host/,
      ],
      [
        { url: 'http://example.com', headers: { 'Proxy-Authorization': 'x' } },
        'invalid_request',
        /set by the host/,
      ],
      [{ url: 'http://example.com', headers: { a: 1 } }, 'invalid_request', /must be a string/],
      [
        { url: 'http://example.com', headers: { big: 'x'.repeat(20_000) } },
        'request_too_large',
        /headers/,
      ],
    ];
    for (const [v, code, why] of cases) {
      const r = parse(v);
      assert.ok(!r.ok, JSON.stringify(v));
      assert.equal(r.code, code, JSON.stringify(v));
      assert.match(r.message, why, JSON.stringify(v));
    }
    const notJson = parseGuestRequest('{url:', policy);
    assert.ok(!notJson.ok && notJson.code === 'invalid_request');
    const u = parseUrl('http://example.com/' + 'a'.repeat(9_000));
    assert.ok(!(u instanceof URL) && /longer than/.test(u.message));
  });
});
