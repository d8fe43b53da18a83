import { parseAuthConfig } from '../../src/auth/auth-config';
import { AuthFileError } from '../../src/auth/auth-file-error';
import { splitSubjectAltName } from '../../src/auth/authenticate';
import { findToken, hashToken, mintToken } from '../../src/auth/token';

const HASH = 'ab'.repeat(32);

test('a complete file: roles with grants, tokens by hash, certificates by CN or SAN', () => {
  const config = parseAuthConfig(
    `roles:
  reader: [{ prefix: "app/", permission: read }]
  admin:
    - { prefix: "", permission: admin }
tokens:
  - { name: ci, role: admin, sha256: ${HASH} }
certificates:
  - { cn: billing, role: reader }
  - { san: "URI:spiffe://prod/billing", role: reader }
`,
    'auth.yaml',
  );
  expect(config.roles.get('reader')?.grants).toEqual([{ prefix: 'app/', permission: 'read' }]);
  expect(config.tokens[0]).toMatchObject({ name: 'ci', role: { name: 'admin' } });
  expect(config.tokens[0].sha256.toString('hex')).toBe(HASH);
  expect(config.certificates.map((c) => c.match)).toEqual([{ cn: 'billing' }, { san: 'URI:spiffe://prod/billing' }]);
});

test('JSON is read as well', () => {
  const config = parseAuthConfig(JSON.stringify({ roles: { r: [{ prefix: '', permission: 'write' }] } }), 'auth.json');
  expect(config.roles.get('r')?.grants[0].permission).toBe('write');
});

test.each([
  ['roles: [', 'not valid YAML or JSON'],
  ['roles: {}\nroles: {}', 'not valid YAML or JSON'],
  ['[]', 'the file: must be a mapping'],
  ['rolls: {}', 'unknown field "rolls"'],
  ['roles: { r: [{ prefix: "a/", permission: delete }] }', 'roles.r[0].permission: must be one of read, write, admin'],
  ['roles: { r: [{ prefix: 7, permission: read }] }', 'roles.r[0].prefix'],
  ['roles: { r: [{ prefix: "\\uD800", permission: read }] }', 'roles.r[0].prefix'],
  [`roles: { r: [] }\ntokens: [{ name: a, role: r, sha256: ${HASH.toUpperCase()} }]`, 'tokens[0].sha256: must be 64 lower-case hex digits'],
  [
    `roles: { r: [] }\ntokens: [{ name: a, role: r, sha256: kv_pasted-token-not-its-hash }]`,
    'tokens[0].sha256: holds a token, not its hash: put the token in the client, and here the 64 hex digits `kv-server token create` writes into the file',
  ],
  [
    `roles: { r: [] }\ntokens: [{ name: a, role: r, sha256: ${HASH} }, { name: a, role: r, sha256: ${HASH} }]`,
    'tokens[1].name: "a" is used twice',
  ],
  [`roles: { r: [] }\ntokens: [{ name: a, role: x, sha256: ${HASH} }]`, 'tokens[0].role: no role "x" (roles: r)'],
  ['roles: { r: [] }\ncertificates: [{ cn: a, san: "DNS:a", role: r }]', 'certificates[0]: give exactly one of cn or san'],
  ['roles: { r: [] }\ncertificates: [{ san: billing, role: r }]', 'certificates[0].san: must be TYPE:value'],
])('%j is refused: %s', (text, message) => {
  expect(() => parseAuthConfig(text, 'auth.yaml')).toThrow(AuthFileError);
  expect(() => parseAuthConfig(text, 'auth.yaml')).toThrow(message);
});

test('a token pasted where its hash goes is not repeated in the refusal', () => {
  const token = mintToken();
  const refusal = (() => {
    try {
      parseAuthConfig(`roles: { r: [] }\ntokens: [{ name: a, role: r, sha256: ${token} }]`, 'auth.yaml');
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  })();
  expect(refusal).toContain('holds a token, not its hash');
  expect(refusal).not.toContain(token.slice(3));
});

test('tokens are 256 random bits; only an exact token finds its entry', () => {
  const token = mintToken();
  expect(token).toMatch(/^kv_[A-Za-z0-9_-]{43}$/);
  expect(Buffer.from(token.slice(3), 'base64url')).toHaveLength(32);
  expect(mintToken()).not.toBe(token);
  const role = { name: 'r', grants: [] };
  const entries = [
    { name: 'other', role, sha256: hashToken(mintToken()) },
    { name: 'mine', role, sha256: hashToken(token) },
  ];
  expect(findToken(entries, token)?.name).toBe('mine');
  expect(findToken(entries, token.slice(0, -1))).toBeUndefined();
  expect(findToken(entries, `${token}x`)).toBeUndefined();
});

test('subject alternative names split as Node prints them, quoted values included', () => {
  expect(splitSubjectAltName('DNS:a.example, IP Address:10.0.0.7, URI:spiffe://prod/x')).toEqual([
    'DNS:a.example',
    'IP Address:10.0.0.7',
    'URI:spiffe://prod/x',
  ]);
  // A comma inside a value cannot forge a second name.
  expect(splitSubjectAltName('DNS:"evil, DNS:billing.internal"')).toEqual(['DNS:evil, DNS:billing.internal']);
  expect(splitSubjectAltName('')).toEqual([]);
});
