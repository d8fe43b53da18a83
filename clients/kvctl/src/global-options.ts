import { isIP } from 'node:net';
import { Option, type Command } from 'commander';
import { CliError } from './cli-error';

export type OutputMode = 'json' | 'table' | 'value';

/** What every command is told by the global flags (or their KV_* variables; a flag wins). */
export interface GlobalOptions {
  endpoints: string[];
  tlsCa: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** The name the server certificate is checked against, in place of the endpoint's host (a tunnel to 127.0.0.1, say). */
  tlsServerName: string | undefined;
  token: string | undefined;
  /** A file holding the token (kept out of ps and shell history); read when kvctl connects. */
  tokenFile: string | undefined;
  insecure: boolean;
  output: OutputMode;
  timeoutMs: number;
  /** How a message names each option: by the KV_* variable its value came from, otherwise by its flag. */
  names: Record<NamedOption, string>;
}

/** The options whose values kvctl checks itself, after commander. */
const NAMED_OPTIONS = ['endpoint', 'tlsCa', 'tlsCert', 'tlsKey', 'tlsServerName', 'token', 'tokenFile', 'timeoutMs'] as const;
export type NamedOption = (typeof NAMED_OPTIONS)[number];

export const DEFAULT_ENDPOINT = '127.0.0.1:50051';

/** The longest deadline a Node timer holds (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Adds the global flags to the program; they are accepted before or after the command. */
export function addGlobalOptions(program: Command): void {
  program
    .addOption(
      new Option('--endpoint <host:port,...>', `server address; repeat or separate with commas (default ${DEFAULT_ENDPOINT})`)
        .env('KV_ENDPOINTS')
        .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), ...value.split(',')]),
    )
    .addOption(new Option('--tls-ca <file>', 'PEM CA certificate(s) that signed the server certificate; turns TLS on').env('KV_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'PEM client certificate, for mutual TLS (with --tls-key)').env('KV_CLIENT_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert').env('KV_CLIENT_TLS_KEY'))
    .addOption(
      new Option(
        '--tls-server-name <name>',
        "check the server certificate against this name, not the endpoint's host (an ssh tunnel to 127.0.0.1)",
      ).env('KV_TLS_SERVER_NAME'),
    )
    .addOption(new Option('--token <token>', 'bearer token sent with every call (shows in ps: prefer --token-file)').env('KV_TOKEN'))
    .addOption(new Option('--token-file <file>', 'file holding the bearer token (whitespace around it is ignored)').env('KV_TOKEN_FILE'))
    .addOption(new Option('--insecure', 'allow plaintext to an endpoint that is not loopback'))
    .addOption(
      new Option('-o, --output <mode>', 'json | table | value (default: table on a terminal, json otherwise)')
        .choices(['json', 'table', 'value'])
        .env('KV_OUTPUT'),
    )
    .addOption(
      new Option(
        '--timeout-ms <ms>',
        'deadline of each call (default 10000); a backup and a watch, once started, run as long as they need',
      ).env('KV_TIMEOUT_MS'),
    );
}

/**
 * How a message names the global option `key` of `command`: the variable
 * when its value came from one (KV_TIMEOUT_MS=abc), otherwise the flag.
 */
export function optionNamer(command: Command): (key: NamedOption) => string {
  return (key) => {
    for (let owner: Command | null = command; owner !== null; owner = owner.parent) {
      const option = owner.options.find((candidate) => candidate.attributeName() === key);
      if (option === undefined) continue;
      const fromEnv = command.getOptionValueSourceWithGlobals(key) === 'env' && option.envVar !== undefined;
      return fromEnv ? (option.envVar as string) : (option.long ?? key);
    }
    return key;
  };
}

/** The global flags as parsed by commander, checked and defaulted; `nameOf` names an option in a message. */
export function resolveGlobalOptions(
  raw: Record<string, unknown>,
  stdoutIsTty: boolean,
  nameOf: (key: NamedOption) => string,
): GlobalOptions {
  const names = Object.fromEntries(NAMED_OPTIONS.map((key) => [key, nameOf(key)])) as Record<NamedOption, string>;
  const endpoints = ((raw.endpoint as string[] | undefined) ?? [DEFAULT_ENDPOINT]).map((e) => e.trim());
  if (endpoints.length === 0 || endpoints.some((e) => e === '')) throw new CliError(`${names.endpoint}: an endpoint is empty`);
  const timeout = (raw.timeoutMs as string | undefined) ?? '10000';
  if (!/^\d+$/.test(timeout) || Number(timeout) < 1) throw new CliError(`${names.timeoutMs}: "${timeout}" is not a positive integer`);
  if (Number(timeout) > MAX_TIMEOUT_MS) {
    throw new CliError(`${names.timeoutMs}: "${timeout}" is more than ${MAX_TIMEOUT_MS} (about 24.8 days), the longest a timer can wait`);
  }
  const options: GlobalOptions = {
    endpoints,
    tlsCa: raw.tlsCa as string | undefined,
    tlsCert: raw.tlsCert as string | undefined,
    tlsKey: raw.tlsKey as string | undefined,
    tlsServerName: raw.tlsServerName as string | undefined,
    token: raw.token as string | undefined,
    tokenFile: raw.tokenFile as string | undefined,
    insecure: raw.insecure === true,
    output: (raw.output as OutputMode | undefined) ?? (stdoutIsTty ? 'table' : 'json'),
    timeoutMs: Number(timeout),
    names,
  };
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    // The one not given is named the way the given one came: a flag beside a flag, a variable beside a variable.
    const fromEnv = (options.tlsCert === undefined ? names.tlsKey : names.tlsCert).startsWith('KV_');
    const [cert, key] = fromEnv ? ['KV_CLIENT_TLS_CERT', 'KV_CLIENT_TLS_KEY'] : ['--tls-cert', '--tls-key'];
    throw new CliError(`${cert} and ${key} go together`);
  }
  if (options.tlsServerName !== undefined) checkServerName(options.tlsServerName, options);
  if (options.token !== undefined && options.tokenFile !== undefined) {
    // A flag wins over a variable, as for every other option (a KV_TOKEN_FILE left in the shell, then --token for one call).
    // Two flags, or two variables, have no such order: either could be the one meant, and kvctl does not pick.
    const [tokenFromEnv, fileFromEnv] = [names.token.startsWith('KV_'), names.tokenFile.startsWith('KV_')];
    if (tokenFromEnv === fileFromEnv) throw new CliError(`${names.token} and ${names.tokenFile} both give a token: give one of them`);
    if (tokenFromEnv) options.token = undefined;
    else options.tokenFile = undefined;
  }
  return options;
}

/**
 * A --tls-server-name is only used over TLS, and is a host name or an IP address, without a port. A host
 * name may end in the dot of a fully-qualified name ("kv.example.com."), which names the same host.
 */
function checkServerName(name: string, options: GlobalOptions): void {
  const { names } = options;
  if (options.tlsCa === undefined && options.tlsCert === undefined) {
    throw new CliError(`${names.tlsServerName} names the server certificate to expect, which needs TLS: give ${names.tlsCa} too`);
  }
  if (isIP(name) === 0 && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(name)) {
    throw new CliError(
      `${names.tlsServerName}: "${name}" is not a host name (give the name the server certificate is issued for, without a port)`,
    );
  }
}
