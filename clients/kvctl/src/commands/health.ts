import { Command } from 'commander';
import { EXIT } from '../exit-codes';
import type { Runner } from '../session';

export function healthCommand(run: Runner): Command {
  return new Command('health').description("print the server's health (grpc.health.v1); exit 4 unless SERVING").action(
    run(async (session) => {
      const endpoint = session.options.endpoints[0];
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
    }),
  );
}
