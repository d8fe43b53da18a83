/**
 * How the etcd engine words a failed etcd call (etcd-errors.ts): one line,
 * the same for the same cause (grpc-js's per-call timings and its empty
 * "Resolution note:" left out, the member that did not answer kept), and
 * "nothing was applied" said only where something could have been: a write,
 * or a read (the first step of an Update or a Txn); a watch or a keep-alive
 * that was not sent was simply not answered.
 */
import { BrokenCircuitError } from 'cockatiel';
import {
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCFailedPreconditionError,
  GRPCInvalidArgumentError,
  GRPCNotImplementedError,
  GRPCOutOfRangeError,
  GRPCUnavailableError,
} from 'etcd3';
import {
  fromEtcdError,
  MEMBER_ON_TRIAL,
  MemberSkippedError,
  PINNED_READ_TRIES,
  readPinned,
  tlsTrouble,
} from '../../src/store/etcd/etcd-errors';

const refused = (): GRPCUnavailableError =>
  new GRPCUnavailableError(
    '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:42398. Resolution note: ',
  );

test('a call that never reached etcd: its cause without the empty resolution note; "nothing was applied" only for a write or a read', () => {
  const applied = '; nothing was sent to etcd, nothing was applied: try again';
  const answered = '; nothing was sent to etcd: try again';
  for (const [kind, suffix] of [
    ['write', applied],
    ['read', applied],
    ['watch', answered],
    ['keep-alive', answered],
  ] as const) {
    expect(fromEtcdError(refused(), kind)).toMatchObject({
      code: 'NOT_SENT',
      message:
        `could not reach etcd for the ${kind} (14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED ` +
        `127.0.0.1:42398)${suffix}`,
    });
  }
  expect(fromEtcdError(new BrokenCircuitError(), 'watch')).toMatchObject({
    code: 'NOT_SENT',
    message: 'no etcd endpoint answers right now (each failed recently); nothing was sent to etcd: try again',
  });
  expect(fromEtcdError(new BrokenCircuitError(), 'write')).toMatchObject({
    message: expect.stringMatching(/; nothing was sent to etcd, nothing was applied: try again$/),
  });
  // With what the skipped member last failed with: the only reason left to give.
  const handshake = new GRPCUnavailableError(
    '14 UNAVAILABLE: No connection established. Last error: Error: 80CBB3F7:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1605:SSL alert number 42',
  );
  expect(fromEtcdError(new MemberSkippedError('Execution prevented because the circuit breaker is open', handshake), 'read')).toMatchObject(
    {
      code: 'NOT_SENT',
      message: expect.stringMatching(
        /^no etcd endpoint answers right now \(each failed recently; the last failure: etcd refused this server's TLS client certificate in the handshake \(alert "bad certificate"\): .*\); nothing was sent to etcd, nothing was applied: try again$/,
      ),
    },
  );
  expect(fromEtcdError(new MemberSkippedError(MEMBER_ON_TRIAL, refused()), 'watch')).toMatchObject({
    message:
      'no etcd endpoint answers right now (its member failed recently and is being tried again; the last failure: 14 UNAVAILABLE: No connection established. ' +
      'Last error: Error: connect ECONNREFUSED 127.0.0.1:42398); nothing was sent to etcd: try again',
  });
});

test("a deadline etcd did not answer within: the member, not grpc-js's timings of the call", () => {
  const timedOut = new GRPCDeadlineExceededError(
    '4 DEADLINE_EXCEEDED: Deadline exceeded after 5.000s,time to current attempt start: 0.001s,LB pick: 0.002s,remote_addr=127.0.0.1:42330',
  );
  expect(fromEtcdError(timedOut, 'write')).toMatchObject({
    code: 'UNAVAILABLE',
    message:
      'etcd did not answer the write (4 DEADLINE_EXCEEDED: Deadline exceeded after 5.000s at 127.0.0.1:42330); ' +
      'the write may or may not have been applied: read the key before writing it again',
  });
  const noMember = new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 1.500s,metadata filters: 0.001s');
  expect(fromEtcdError(noMember, 'read')).toMatchObject({
    message: 'etcd did not answer the read (4 DEADLINE_EXCEEDED: Deadline exceeded after 1.500s)',
  });
});

test('a read pinned to a revision that etcd compacts meanwhile starts again; after PINNED_READ_TRIES it is UNAVAILABLE saying so, other errors pass', async () => {
  const compacted = (): GRPCOutOfRangeError =>
    new GRPCOutOfRangeError('11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted');
  let tries = 0;
  await expect(
    readPinned('the backup', () => {
      tries++;
      return tries < PINNED_READ_TRIES ? Promise.reject(compacted()) : Promise.resolve('read');
    }),
  ).resolves.toBe('read');
  expect(tries).toBe(PINNED_READ_TRIES);
  tries = 0;
  await expect(
    readPinned('the backup', () => {
      tries++;
      return Promise.reject(compacted());
    }),
  ).rejects.toMatchObject({
    code: 'UNAVAILABLE',
    message: `etcd compacted the revision the backup was read at before it was read whole, ${PINNED_READ_TRIES} times in a row (etcd's auto-compaction, or etcdctl compact): try again`,
  });
  expect(tries).toBe(PINNED_READ_TRIES);
  const other = new GRPCOutOfRangeError('11 OUT_OF_RANGE: something else');
  await expect(readPinned('the listing', () => Promise.reject(other))).rejects.toBe(other);
});

test('etcd refusing the server itself is BACKEND_REFUSED (no retry helps); a token etcd forgot, an auth change racing the call, or an address that is not etcd, is NOT_SENT', () => {
  expect(fromEtcdError(new EtcdPermissionDeniedError('etcdserver: permission denied'), 'write')).toMatchObject({
    code: 'BACKEND_REFUSED',
    writing: true,
  });
  expect(
    fromEtcdError(new EtcdAuthenticationFailedError('etcdserver: authentication failed, invalid user ID or password'), 'read'),
  ).toMatchObject({
    code: 'BACKEND_REFUSED',
    writing: false,
    message: expect.stringContaining('check --etcd-username and the password in --etcd-password-file'),
  });
  expect(
    fromEtcdError(new GRPCNotImplementedError('12 UNIMPLEMENTED: The server does not implement the method /etcdserverpb.KV/Range'), 'read'),
  ).toMatchObject({
    // One address that is not etcd: that member's failure (another may serve the call), not the cluster refusing kv.
    code: 'NOT_SENT',
    message: expect.stringContaining('not as an etcd v3 member'),
  });
  expect(
    fromEtcdError(new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: revision of auth store is old'), 'write'),
  ).toMatchObject({
    code: 'NOT_SENT',
    message: expect.stringContaining("etcd's users or roles changed as it took the write"),
  });
  expect(
    fromEtcdError(new GRPCFailedPreconditionError('9 FAILED_PRECONDITION: etcdserver: authentication is not enabled'), 'read'),
  ).toMatchObject({
    code: 'BACKEND_REFUSED',
    message: expect.stringContaining("etcd's authentication is off; leave out --etcd-username and --etcd-password-file"),
  });
  expect(fromEtcdError(new EtcdInvalidAuthTokenError('etcdserver: invalid auth token'), 'watch')).toMatchObject({
    code: 'NOT_SENT',
    message: "etcd refused this server's auth token for the watch (etcdserver: invalid auth token); nothing was sent to etcd: try again",
  });
});

test('a TLS handshake that failed says which certificate to look at, a name mismatch whole', () => {
  const mismatch = new GRPCUnavailableError(
    "14 UNAVAILABLE: No connection established. Last error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: IP: 10.0.0.5 is not in the cert's list: 127.0.0.1 (2026-12-04T05:18:56.112Z)",
  );
  expect(tlsTrouble(mismatch.message)).toBe(
    "this server does not accept etcd's certificate (Hostname/IP does not match certificate's altnames: IP: 10.0.0.5 is not in the cert's list: 127.0.0.1): check that --etcd-ca holds the CA that signed the etcd members' certificates, and that those name the --etcd-endpoints hosts and are current",
  );
  expect(
    tlsTrouble(
      'Last error: 80:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42',
    ),
  ).toMatch(/^etcd refused this server's TLS client certificate in the handshake \(alert "bad certificate"\)/);
  // No cipher suite in common is not a certificate's fault.
  expect(tlsTrouble('SSL routines:ssl3_read_bytes:sslv3 alert handshake failure')).toBeUndefined();
});

test('an https:// endpoint whose server does not speak TLS is named as such', () => {
  expect(
    tlsTrouble(
      '14 UNAVAILABLE: No connection established. Last error: Error: Client network socket disconnected before secure TLS connection was established',
    ),
  ).toMatch(/^the connection closed before its TLS handshake ended: an etcd that serves plaintext is named http:\/\/, not https:\/\//);
  expect(tlsTrouble('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379')).toBeUndefined();
});
