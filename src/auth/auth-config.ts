/**
 * The auth file's meaning: roles (per-prefix grants), tokens (by hash) and
 * client-certificate identities, each pointing at a role. Parsed from text
 * (YAML, which includes JSON) and checked strictly: an unknown field, a
 * dangling role or a malformed hash is an error naming where it is, never
 * silently ignored. docs/security.md shows a complete file.
 */
import { parse, YAMLParseError } from 'yaml';
import { PERMISSIONS, type Permission } from '../server/access';
import { AuthFileError } from './auth-file-error';

export interface Grant {
  /** Every key starting with this ('' = every key). */
  prefix: string;
  permission: Permission;
}

export interface Role {
  name: string;
  grants: Grant[];
}

export interface TokenEntry {
  /** Shown in audit lines as "token:NAME". */
  name: string;
  role: Role;
  /** SHA-256 of the token's text. */
  sha256: Buffer;
}

/** A client certificate matches by its subject CN, or by one of its subject alternative names ("DNS:billing.internal"). */
export type CertificateMatch = { cn: string } | { san: string };

export interface CertificateEntry {
  match: CertificateMatch;
  role: Role;
}

export interface AuthConfig {
  roles: Map<string, Role>;
  tokens: TokenEntry[];
  certificates: CertificateEntry[];
}

type Fields = Record<string, unknown>;

export function parseAuthConfig(text: string, source: string): AuthConfig {
  let document: unknown;
  try {
    document = parse(text, { uniqueKeys: true, prettyErrors: false });
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` (line ${error.linePos[0].line})` : '';
    throw new AuthFileError(`${source}${where}: not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  const fail = (path: string, problem: string): never => {
    throw new AuthFileError(`${source}: ${path}: ${problem}`);
  };
  const top = fields(document, 'the file', ['roles', 'tokens', 'certificates'], fail);

  const roles = new Map<string, Role>();
  for (const [name, grants] of Object.entries(fields(top.roles ?? {}, 'roles', undefined, fail))) {
    if (name === '') fail('roles', 'a role needs a non-empty name');
    const role: Role = { name, grants: [] };
    list(grants, `roles.${name}`, fail).forEach((grant, i) => {
      const path = `roles.${name}[${i}]`;
      const g = fields(grant, path, ['prefix', 'permission'], fail);
      const permission = g.permission;
      // A lone surrogate would match keys by UTF-16 units that no UTF-8 key starts with.
      if (typeof g.prefix !== 'string' || !g.prefix.isWellFormed())
        fail(`${path}.prefix`, 'must be a string of Unicode text ("" for every key)');
      if (typeof permission !== 'string' || !(PERMISSIONS as readonly string[]).includes(permission)) {
        fail(`${path}.permission`, `must be one of ${PERMISSIONS.join(', ')}`);
      }
      role.grants.push({ prefix: g.prefix as string, permission: permission as Permission });
    });
    roles.set(name, role);
  }
  const roleNamed = (value: unknown, path: string): Role => {
    const role = typeof value === 'string' ? roles.get(value) : undefined;
    if (role === undefined) {
      fail(path, `no role ${JSON.stringify(value)} (roles: ${[...roles.keys()].join(', ') || 'none'})`);
    }
    return role as Role;
  };

  const names = new Set<string>();
  const tokens = list(top.tokens ?? [], 'tokens', fail).map((entry, i): TokenEntry => {
    const path = `tokens[${i}]`;
    const t = fields(entry, path, ['name', 'role', 'sha256'], fail);
    if (typeof t.name !== 'string' || t.name === '') fail(`${path}.name`, 'must be a non-empty string');
    if (names.has(t.name as string)) fail(`${path}.name`, `${JSON.stringify(t.name)} is used twice`);
    names.add(t.name as string);
    if (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256)) {
      // Never the value itself in the message: it may be a token pasted where its hash goes.
      const aToken = typeof t.sha256 === 'string' && t.sha256.startsWith('kv_');
      fail(
        `${path}.sha256`,
        aToken
          ? 'holds a token, not its hash: put the token in the client, and here the 64 hex digits `kv-server token create` writes into the file'
          : 'must be 64 lower-case hex digits (what `kv-server token create` writes into the file)',
      );
    }
    return { name: t.name as string, role: roleNamed(t.role, `${path}.role`), sha256: Buffer.from(t.sha256 as string, 'hex') };
  });

  const certificates = list(top.certificates ?? [], 'certificates', fail).map((entry, i): CertificateEntry => {
    const path = `certificates[${i}]`;
    const c = fields(entry, path, ['cn', 'san', 'role'], fail);
    if ((c.cn === undefined) === (c.san === undefined)) fail(path, 'give exactly one of cn or san');
    const [field, value] = c.cn !== undefined ? ['cn', c.cn] : ['san', c.san];
    if (typeof value !== 'string' || value === '') fail(`${path}.${field}`, 'must be a non-empty string');
    if (field === 'san' && !/^[A-Za-z ]+:./.test(value as string)) {
      fail(`${path}.san`, 'must be TYPE:value as openssl prints it, e.g. "DNS:billing.internal" or "URI:spiffe://prod/billing"');
    }
    const match: CertificateMatch = field === 'cn' ? { cn: value as string } : { san: value as string };
    return { match, role: roleNamed(c.role, `${path}.role`) };
  });

  return { roles, tokens, certificates };
}

/** The object at `path`, refusing fields outside `allowed` (undefined: any name). */
function fields(value: unknown, path: string, allowed: string[] | undefined, fail: (path: string, problem: string) => never): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(path, 'must be a mapping');
  for (const name of Object.keys(value)) {
    if (allowed !== undefined && !allowed.includes(name))
      fail(path, `unknown field ${JSON.stringify(name)} (fields: ${allowed.join(', ')})`);
  }
  return value as Fields;
}

function list(value: unknown, path: string, fail: (path: string, problem: string) => never): unknown[] {
  if (!Array.isArray(value)) return fail(path, 'must be a list');
  return value;
}
