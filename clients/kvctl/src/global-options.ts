import { Option, type Command } from 'commander';
import { CliError } from './cli-error';

export type OutputMode = 'json' | 'table' | 'value';

/** What every command is told by the global flags (or their KV_* variables; a flag wins). */
export interface GlobalOptions {
  endpoints: string[];
  tlsCa: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  token: string | undefined;
  insecure: boolean;
  output: OutputMode;
  timeoutMs: number;
}

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
    .addOption(new Option('--token <token>', 'bearer token sent with every call').env('KV_TOKEN'))
    .addOption(new Option('--insecure', 'allow plaintext to an endpoint that is not loopback'))
    .addOption(
      new Option('-o, --output <mode>', 'json | table | value (default: table on a terminal, json otherwise)')
        .choices(['json', 'table', 'value'])
        .env('KV_OUTPUT'),
    )
    .addOption(new Option('--timeout-ms <ms>', 'deadline of each call (default 10000)').env('KV_TIMEOUT_MS'));
}

/** The global flags as parsed by commander, checked and defaulted. */
export function resolveGlobalOptions(raw: Record<string, unknown>, stdoutIsTty: boolean): GlobalOptions {
  const endpoints = ((raw.endpoint as string[] | undefined) ?? [DEFAULT_ENDPOINT]).map((e) => e.trim());
  if (endpoints.length === 0 || endpoints.some((e) => e === '')) throw new CliError('--endpoint: an endpoint is empty');
  const timeout = (raw.timeoutMs as string | undefined) ?? '10000';
  if (!/^\d+$/.test(timeout) || Number(timeout) < 1) throw new CliError(`--timeout-ms: "${timeout}" is not a positive integer`);
  if (Number(timeout) > MAX_TIMEOUT_MS) {
    throw new CliError(`--timeout-ms: "${timeout}" is more than ${MAX_TIMEOUT_MS} (about 24.8 days), the longest a timer can wait`);
  }
  const options: GlobalOptions = {
    endpoints,
    tlsCa: raw.tlsCa as string | undefined,
    tlsCert: raw.tlsCert as string | undefined,
    tlsKey: raw.tlsKey as string | undefined,
    token: raw.token as string | undefined,
    insecure: raw.insecure === true,
    output: (raw.output as OutputMode | undefined) ?? (stdoutIsTty ? 'table' : 'json'),
    timeoutMs: Number(timeout),
  };
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new CliError('--tls-cert and --tls-key go together');
  }
  return options;
}
