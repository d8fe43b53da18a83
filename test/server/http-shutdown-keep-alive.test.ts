/**
 * SIGTERM and HTTP/1.1 keep-alive connections on the HTTP port, plaintext
 * and over TLS, with Node's own keep-alive client: an idle connection is
 * closed at once; a call in flight is answered, with `Connection: close`,
 * and its connection takes no other call (HTTP/1.1 has no GOAWAY).
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { issueServer, makeCa, read } from '../support/certificates';
import { startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

interface Answer {
  status: number;
  connection: string | undefined;
  body: string;
}

function answerOf(request: http.ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    request.once('error', reject);
    request.once('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, body }));
    });
  });
}

const json = { 'content-type': 'application/json' };

test.each(['http', 'https'] as const)(
  '%s: at SIGTERM an idle keep-alive connection is closed, and a call in flight is answered with Connection: close; its connection takes no further call',
  async (scheme) => {
    const dir = makeTempDir('kv-http-keep-alive-');
    const ca = makeCa(dir, 'ca');
    const serverCert = issueServer(dir, ca);
    const tlsArgs = scheme === 'https' ? ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key] : [];
    // At info, the server says when it has begun to shut down.
    const server = await startServer({ args: ['--http-listen', '127.0.0.1:0', ...tlsArgs], env: { KV_LOG_LEVEL: 'info' } });
    const [host, port] = server.httpAddress!.split(':');
    const newAgent = (): http.Agent =>
      scheme === 'https'
        ? new https.Agent({ keepAlive: true, maxSockets: 1, ca: read(ca.cert) })
        : new http.Agent({ keepAlive: true, maxSockets: 1 });
    const call = (agent: http.Agent, body?: string, headers: Record<string, string> = {}): http.ClientRequest => {
      const options = { host, port, agent, method: 'POST', path: '/kv.v1.KeyValueService/Set', headers: { ...json, ...headers } };
      const request = scheme === 'https' ? https.request(options) : http.request(options);
      if (body !== undefined) request.end(body);
      return request;
    };
    const idleAgent = newAgent();
    const busyAgent = newAgent();
    let signalled = false;
    try {
      // Two connections, kept alive.
      const first = call(idleAgent, '{"key": "ka/0", "value": 0}');
      const idleSocket = new Promise<net.Socket>((resolve) => first.once('socket', resolve));
      expect(await answerOf(first)).toMatchObject({ status: 200, connection: 'keep-alive' });
      expect(await answerOf(call(busyAgent, '{"key": "ka/0", "value": 0}'))).toMatchObject({ status: 200, connection: 'keep-alive' });
      let idleClosed = false;
      (await idleSocket).once('close', () => (idleClosed = true));

      // On the second, a call whose headers the server has (it says 100 Continue), and half its body.
      const inFlight = call(busyAgent, undefined, { expect: '100-continue' });
      const answered = answerOf(inFlight);
      await new Promise<void>((resolve) => inFlight.once('continue', resolve));
      inFlight.write('{"key": "ka/1", ');
      server.child.kill('SIGTERM');
      signalled = true;
      await pollUntil('the shutdown to begin', () => (server.output().includes('shutting down') ? true : undefined));
      // The idle connection goes while the call is still in flight.
      await pollUntil('the idle connection closed', () => (idleClosed ? true : undefined), 2_000);
      inFlight.end('"value": 1}');
      expect(await answered).toMatchObject({ status: 200, connection: 'close', body: expect.stringContaining('revision') });

      // The agent would have sent this on the same connection, kept alive; now it needs another, and there is none.
      await expect(answerOf(call(busyAgent, '{"key": "ka/2", "value": 2}'))).rejects.toThrow(/ECONNREFUSED|ECONNRESET|socket hang up/);
    } finally {
      idleAgent.destroy();
      busyAgent.destroy();
      // Once signalled, the server stops by itself; another SIGTERM could land as it exits, and kill it.
      expect(await (signalled ? server.exited() : server.stop())).toBe(0);
    }
  },
);
