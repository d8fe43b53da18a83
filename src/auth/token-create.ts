/**
 * `kv-server token create --role NAME [--name NAME] [--auth-file FILE]`:
 * mints a token and prints it once, on stdout, alone (so scripts can
 * capture it). The server only ever sees its hash: with --auth-file (or,
 * as the server reads it, KV_AUTH_FILE) the entry is added to that file
 * (comments and layout kept); otherwise the entry to add is printed on
 * stderr. Either way the server needs a SIGHUP.
 */
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { parseArgs } from 'node:util';
import { isScalar, isSeq, parseDocument, YAMLSeq } from 'yaml';
import { parseAuthConfig } from './auth-config';
import { AuthFileError } from './auth-file-error';
import { readAuthText } from './read-auth-file';
import { hashToken, mintToken } from './token';

export const TOKEN_CREATE_USAGE = 'usage: kv-server token create --role NAME [--name NAME] [--auth-file FILE (default: $KV_AUTH_FILE)]';

/** Returns the exit code: 0 done, 1 the auth file could not be updated, 2 bad arguments. */
export function runTokenCreate(
  argv: string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv = process.env,
): number {
  let values: { role?: string; name?: string; 'auth-file'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { role: { type: 'string' }, name: { type: 'string' }, 'auth-file': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    err.write(`kv-server token create: ${(error as Error).message}\n${TOKEN_CREATE_USAGE}\n`);
    return 2;
  }
  const { role } = values;
  // The file the server would read: a flag wins over its variable, and an empty variable counts as unset (config.ts).
  const authFile = values['auth-file'] ?? (env.KV_AUTH_FILE === '' ? undefined : env.KV_AUTH_FILE);
  if (role === undefined || role === '') {
    err.write(`kv-server token create: --role is required\n${TOKEN_CREATE_USAGE}\n`);
    return 2;
  }
  const token = mintToken();
  const sha256 = hashToken(token).toString('hex');
  const entry = { name: values.name ?? `${role}-${sha256.slice(0, 8)}`, role, sha256 };

  if (authFile === undefined) {
    out.write(`${token}\n`);
    err.write(`add to "tokens" in the auth file, then send the server SIGHUP:\n  - ${JSON.stringify(entry)}\n`);
    return 0;
  }
  try {
    addTokenEntry(authFile, entry);
  } catch (error) {
    if (!(error instanceof AuthFileError)) throw error;
    err.write(`kv-server token create: ${error.message}\n`);
    return 1;
  }
  out.write(`${token}\n`);
  err.write(`added token ${JSON.stringify(entry.name)} (role ${role}) to ${authFile}; send the server SIGHUP to load it\n`);
  return 0;
}

/** Adds the entry, checking first that the file stays valid (the role exists, the name is new); replaces the file atomically. */
function addTokenEntry(file: string, entry: { name: string; role: string; sha256: string }): void {
  const { text } = readAuthText(file);
  const json = file.endsWith('.json') ? parsedJson(text) : undefined;
  const updated = json !== undefined ? withJsonEntry(json, entry) : withYamlEntry(text, entry);
  parseAuthConfig(updated, file);
  let temp: string | undefined;
  try {
    // A symbolic link stays one: the file it points to is the one replaced (the one a server given either path reads).
    const target = realpathSync(file);
    const { mode, uid, gid } = statSync(target);
    temp = `${target}.${process.pid}.tmp`;
    const fd = openSync(temp, 'wx', 0o600);
    try {
      // The file's mode, owner and group, whatever the umask and whoever runs this: an auth file replaced by one of root's
      // (sudo kv-server token create), or by one the umask narrowed, is one a server running as its own user cannot read.
      fchmodSync(fd, mode & 0o777);
      const made = fstatSync(fd);
      if (made.uid !== uid || made.gid !== gid) keepOwner(fd, file, uid, gid);
      writeSync(fd, updated);
      // On disk before it takes the file's place: a crash then leaves the old file or the new one, never an empty one.
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, target);
    temp = undefined;
  } catch (error) {
    if (temp !== undefined) rmSync(temp, { force: true });
    if (error instanceof AuthFileError) throw error;
    throw new AuthFileError(`cannot write the auth file ${file}: ${(error as Error).message}`);
  }
}

function keepOwner(fd: number, file: string, uid: number, gid: number): void {
  try {
    fchownSync(fd, uid, gid);
  } catch (error) {
    throw new AuthFileError(
      `cannot give the new auth file the owner and group of ${file} (uid ${uid}, gid ${gid}), so the server might not read it: ${(error as Error).message}; run token create as the file's owner, or as root`,
    );
  }
}

/** The text as JSON, or undefined if it is not: a .json file with YAML in it (a comment, say), which the server reads as YAML and so is edited as YAML. */
function parsedJson(text: string): { tokens?: unknown[] | null } | undefined {
  try {
    return JSON.parse(text) as { tokens?: unknown[] | null };
  } catch {
    return undefined;
  }
}

function withJsonEntry(json: { tokens?: unknown[] | null }, entry: object): string {
  json.tokens = [...(json.tokens ?? []), entry];
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** The entry added to the file's `tokens`, which may be a list, or absent, or empty (`tokens:`) as the server allows. */
function withYamlEntry(text: string, entry: object): string {
  const document = parseDocument(text);
  const tokens: unknown = document.get('tokens', true);
  const item = document.createNode(entry, { flow: true });
  if (isSeq(tokens)) {
    // One entry per line in a block list, whatever `tokens: []` the file started with.
    tokens.flow = false;
    tokens.items.push(item);
  } else {
    const list = new YAMLSeq();
    list.items.push(item);
    // `tokens: # none yet`: the comment stays, above the first entry.
    if (isScalar(tokens)) list.commentBefore = tokens.comment;
    document.set('tokens', list);
  }
  const updated = document.toString({ lineWidth: 0 });
  return updated.endsWith('\n') ? updated : `${updated}\n`;
}
