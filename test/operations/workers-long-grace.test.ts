/**
 * --workers with the longest --shutdown-grace-ms: the supervisor's kill
 * timer for a draining child (the grace plus a slack) is capped at what a
 * Node timer holds. Past it, the timer fired at once and SIGKILLed every
 * worker and the store owner as the drain began.
 */
import { startServer } from '../support/server-process';

test('a server with --workers 2 and --shutdown-grace-ms 2147483647 drains and exits 0 on SIGTERM, its children not killed', async () => {
  const server = await startServer({ args: ['--workers', '2', '--shutdown-grace-ms', '2147483647'] });
  expect(await server.stop()).toBe(0);
  expect(server.output()).not.toMatch(/SIGKILL|signal 9|killed/i);
}, 60_000);
