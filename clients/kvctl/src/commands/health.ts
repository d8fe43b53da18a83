import { Command } from 'commander';
import { KvError, status as grpcStatus } from '@kv/client';
import { connect } from '../connect';
import { EXIT, exitCodeForError, type ExitCode } from '../exit-codes';
import { describeConnectionFailure } from '../connection-failure';
import type { Runner, Session } from '../session';

/**
 * With several endpoints, how long each is given to answer: a frozen one (a stopped server that still takes connections,
 * or one that does not speak gRPC) is UNREACHABLE after this, as calls pass it over for the next endpoint (the SDK's
 * connectTimeoutMs), rather than holding the answer for the others until --timeout-ms (or after --timeout-ms, if shorter).
 */
const ANSWER_WITHIN_MS = 2000;

/** One endpoint's answer: its serving status, or why it gave none (UNREACHABLE, or the reason of the error). */
interface EndpointHealth {
  endpoint: string;
  status: string;
  error?: string;
  exitCode: ExitCode;
}

export function healthCommand(run: Runner): Command {
  return new Command('health')
    .description(
      "print the server's health (grpc.health.v1); exit 4 unless SERVING. With several endpoints, each is asked on its own " +
        `and printed on its own (UNREACHABLE if it did not answer within ${ANSWER_WITHIN_MS} ms, DENIED if it wants a client certificate); exit 0 only if all are SERVING`,
    )
    .action(
      run(async (session) => {
        const { endpoints } = session.options;
        if (endpoints.length === 1) {
          // One endpoint: an error is the command's error (one line, its exit code), as for any other command.
          const [endpoint] = endpoints;
          const status = await session.kv().health();
          session.printer.print({
            json: { endpoint, status },
            table: [
              ['ENDPOINT', 'STATUS'],
              [endpoint, status],
            ],
            value: status,
          });
          return status === 'SERVING' ? EXIT.ok : EXIT.unavailable;
        }
        const results = await Promise.all(endpoints.map((endpoint) => checkOne(session, endpoint)));
        const json = results.map(({ endpoint, status, error }) =>
          error === undefined ? { endpoint, status } : { endpoint, status, error },
        );
        session.printer.print({
          json,
          table: [['ENDPOINT', 'STATUS', 'ERROR'], ...results.map((r) => [r.endpoint, r.status, r.error ?? ''])],
          value: results.map((r) => `${r.endpoint} ${r.status}`).join('\n'),
        });
        // Not all SERVING: the first endpoint's failure that is not mere unavailability (say, a token refused) says most.
        const failed = results.filter((r) => r.exitCode !== EXIT.ok);
        if (failed.length === 0) return EXIT.ok;
        return (failed.find((r) => r.exitCode !== EXIT.unavailable) ?? failed[0]).exitCode;
      }),
    );
}

/** Asks one endpoint alone (its own client: the SDK would fail a read over to the next endpoint). */
async function checkOne(session: Session, endpoint: string): Promise<EndpointHealth> {
  const client = connect({ ...session.options, endpoints: [endpoint] });
  const withinMs = Math.min(session.options.timeoutMs, ANSWER_WITHIN_MS);
  try {
    const status = await client.health({ deadlineMs: withinMs });
    return { endpoint, status, exitCode: status === 'SERVING' ? EXIT.ok : EXIT.unavailable };
  } catch (error) {
    if (!(error instanceof KvError)) throw error;
    if (error.code === grpcStatus.DEADLINE_EXCEEDED) {
      const text = `no answer within ${withinMs} ms (a stopped server that still takes connections, or not a gRPC server?)`;
      return { endpoint, status: 'UNREACHABLE', error: text, exitCode: EXIT.unavailable };
    }
    if (error.code === grpcStatus.UNAVAILABLE) {
      const { text, exitCode } = describeConnectionFailure(error, session.options);
      // Denied, not unreachable: it answered, and refused a connection without a client certificate.
      return { endpoint, status: exitCode === EXIT.denied ? 'DENIED' : 'UNREACHABLE', error: text, exitCode };
    }
    return { endpoint, status: error.reason, error: error.message, exitCode: exitCodeForError(error) };
  } finally {
    client.close();
  }
}
