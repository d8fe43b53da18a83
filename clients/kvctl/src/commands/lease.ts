import { Command } from 'commander';
import { KvError } from '@kv/client';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import { limitOption, pageSizeFor, take } from '../limit';
import type { Runner, Session } from '../session';
import { StopOnSignal } from '../stop-on-signal';
import { parsePositiveNumber } from './expected-revision';

/** lease grant | keepalive | revoke | info | ls: keys set with --lease ID go when the lease expires or is revoked. */
export function leaseCommand(run: Runner): Command {
  const lease = new Command('lease').description(
    'grant, keep alive, revoke, describe or list leases (set KEY VALUE --lease ID attaches keys to it)',
  );
  lease.addCommand(
    new Command('grant')
      .description('create a lease of TTL milliseconds and print its id')
      .argument('<ttl-ms>')
      .action(
        run(async (session, ttl: string) => {
          const ttlMs = positive(ttl, 'TTL');
          const granted = await session.kv().grantLease(ttlMs);
          print(session, { id: granted.id, ttlMs: granted.ttlMs }, String(granted.id));
        }),
      ),
  );
  lease.addCommand(
    new Command('keepalive')
      .description(
        'keep lease ID alive until Ctrl-C (exit 130; the lease then expires after its time to live); exit 1 if it expires or is ' +
          'revoked meanwhile, 4 if no server answered its refreshes in time (it may have expired). A lost connection and ' +
          'its return are said on stderr',
      )
      .argument('<id>')
      .action(
        run(async (session, id: string) => {
          const leaseId = positive(id, 'ID');
          // Said on stderr, as watch says it: the lease is kept meanwhile for as long as its time to live allows.
          const handle = session.kv().keepAlive(leaseId, {
            onResume: (change) =>
              session.warn(
                change.state === 'lost'
                  ? `lost the keep-alive stream (${change.reason}); still keeping lease ${leaseId}, until its time to live runs out`
                  : `keep-alive of lease ${leaseId} resumed`,
              ),
          });
          if (session.stderr.isTTY === true) session.warn(`keeping lease ${handle.id} alive; Ctrl-C to stop`);
          // Ctrl-C or SIGTERM is how it is stopped, and, as for any command, kvctl then ends by the signal.
          const stop = new StopOnSignal();
          try {
            const outcome = await Promise.race([handle.lost, stop.signalled]);
            handle.close();
            if (typeof outcome !== 'string') throw outcome;
            stop.dieOf(outcome);
          } finally {
            stop.close();
          }
        }),
      ),
  );
  lease.addCommand(
    new Command('revoke')
      .description('delete lease ID and every key attached to it, at once')
      .argument('<id>')
      .action(
        run(async (session, id: string) => {
          const leaseId = positive(id, 'ID');
          const deletedCount = await session.kv().revokeLease(leaseId);
          print(session, { id: leaseId, deletedCount }, String(deletedCount));
        }),
      ),
  );
  lease.addCommand(
    new Command('info')
      .description("print lease ID's time to live and what is left of it (exit 1 if there is no such lease)")
      .argument('<id>')
      .option('--keys', 'also list its keys')
      .action(
        run(async (session, id: string, options: { keys?: boolean }) => {
          const leaseId = positive(id, 'ID');
          const info = await session.kv().leaseInfo(leaseId, { keys: options.keys === true });
          if (info === undefined)
            throw new CliError(`lease ${leaseId} not found (never granted, expired or revoked) (LEASE_NOT_FOUND)`, EXIT.notFound);
          const { ttlMs, remainingMs, keys } = info;
          const json = options.keys === true ? { id: leaseId, ttlMs, remainingMs, keys } : { id: leaseId, ttlMs, remainingMs };
          print(session, json, String(info.remainingMs));
        }),
      ),
  );
  lease.addCommand(
    new Command('ls')
      .description(
        "list the live leases in id order, every page: time to live, time left, how many keys, and whether a key's own " +
          '(set --ttl-ms). Not on the etcd engine (exit 5); with an auth file it needs admin on every key',
      )
      .addOption(limitOption('leases'))
      .action(
        run(async (session, options: { limit?: number }) => {
          const leases = take(session.kv().leases({ pageSize: pageSizeFor(options.limit) }), options.limit);
          try {
            await session.printer.printList(leases, {
              json: ({ id, ttlMs, remainingMs, keyCount, private: own }) => ({ id, ttlMs, remainingMs, keyCount, private: own }),
              header: ['ID', 'TTL', 'REMAINING', 'KEYS', 'PRIVATE'],
              row: (l) => [String(l.id), `${l.ttlMs}ms`, `${l.remainingMs}ms`, String(l.keyCount), l.private ? 'yes' : 'no'],
              value: (l) => String(l.id),
            });
          } catch (error) {
            if (error instanceof KvError && error.reason === 'NOT_SUPPORTED') {
              throw new CliError(`lease ls: this server cannot list its leases: ${error.message} (NOT_SUPPORTED)`, EXIT.rejected);
            }
            throw error;
          }
        }),
      ),
  );
  return lease;
}

function positive(raw: string, what: string): number {
  return parsePositiveNumber(raw, what) as number;
}

function print(session: Session, json: Record<string, unknown>, value: string): void {
  const columns = Object.keys(json);
  session.printer.print({
    json,
    table: [columns.map((c) => c.replace(/[A-Z]/g, (m) => `_${m}`).toUpperCase()), columns.map((c) => JSON.stringify(json[c]))],
    value,
  });
}
