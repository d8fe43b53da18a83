import net from 'node:net';
import tls from 'node:tls';

export interface TlsProxy {
  /** 127.0.0.1:port of the TLS side. */
  address: string;
  /** The server name (SNI) of each TLS connection accepted, in order; false for one that sent none. */
  servernames: (string | false)[];
  close(): Promise<void>;
}

/**
 * Terminates TLS (optionally requiring a client certificate signed by `ca`)
 * and passes the bytes on to a plaintext gRPC server: TLS clients against the
 * real server, until the server speaks TLS itself.
 */
export async function startTlsProxy(options: { target: string; cert: Buffer; key: Buffer; ca?: Buffer }): Promise<TlsProxy> {
  const [host, port] = [options.target.slice(0, options.target.lastIndexOf(':')), Number(options.target.split(':').pop())];
  const sockets = new Set<net.Socket>();
  const servernames: (string | false)[] = [];
  const server = tls.createServer(
    {
      cert: options.cert,
      key: options.key,
      ca: options.ca,
      requestCert: options.ca !== undefined,
      rejectUnauthorized: options.ca !== undefined,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      servernames.push(socket.servername ?? false);
      const upstream = net.connect(port, host);
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      }
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      socket.pipe(upstream).pipe(socket);
    },
  );
  // A client rejected in the handshake (no certificate) is an expected outcome here.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    servernames,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
