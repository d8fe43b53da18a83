import { Command } from 'commander';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import type { Runner, Session } from '../session';
import { parsePositiveNumber } from './expected-revision';

/** lease grant | keepalive | revoke | info: keys set with --lease ID go when the lease expires or is revoked. */
export function leaseCommand(run: Runner): Command {
  const lease = new Command('lease').description(
    'grant, keep alive, revoke or describe a lease (set KEY VALUE --lease ID attaches keys to it)',
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
      .description('keep lease ID alive until Ctrl-C (it then expires after its time to live); exit 1 if it is lost meanwhile')
      .argument('<id>')
      .action(
        run(async (session, id: string) => {
          const handle = session.kv().keepAlive(positive(id, 'ID'));
          if (session.stderr.isTTY === true) session.warn(`keeping lease ${handle.id} alive; Ctrl-C to stop`);
          const stopped = new Promise<'stopped'>((resolve) => {
            process.once('SIGINT', () => resolve('stopped'));
            process.once('SIGTERM', () => resolve('stopped'));
          });
          const outcome = await Promise.race([handle.lost, stopped]);
          handle.close();
          if (outcome !== 'stopped') throw outcome;
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
          if (info === undefined) throw new CliError(`lease ${leaseId} not found (never granted, expired or revoked)`, EXIT.notFound);
          const { ttlMs, remainingMs, keys } = info;
          const json = options.keys === true ? { id: leaseId, ttlMs, remainingMs, keys } : { id: leaseId, ttlMs, remainingMs };
          print(session, json, String(info.remainingMs));
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
