import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientReadableStream,
  type Metadata,
  makeGenericClientConstructor,
} from '@grpc/grpc-js';
import { type KeyValueServiceClient, KeyValueServiceService } from './gen/kv/v1/kv';
import {
  decodeGetResponse,
  decodeListResponse,
  decodeTxnResponse,
  decodeUpdateResponse,
  decodeWatchResponse,
} from './wire/decode-responses';

/**
 * The generated kv.v1 client, except that responses carrying JSON values
 * are decoded by wire/decode-responses.ts, which keeps every object field
 * as sent (the generated decoders lose one named "__proto__").
 */
const ServiceClient = makeGenericClientConstructor(
  {
    ...KeyValueServiceService,
    get: { ...KeyValueServiceService.get, responseDeserialize: decodeGetResponse },
    list: { ...KeyValueServiceService.list, responseDeserialize: decodeListResponse },
    watch: { ...KeyValueServiceService.watch, responseDeserialize: decodeWatchResponse },
    txn: { ...KeyValueServiceService.txn, responseDeserialize: decodeTxnResponse },
    update: { ...KeyValueServiceService.update, responseDeserialize: decodeUpdateResponse },
    // Kept as sent: the backup's checksum covers each message's bytes (see rawBackupStream).
    backup: { ...KeyValueServiceService.backup, responseDeserialize: (bytes: Buffer) => bytes },
  },
  'kv.v1.KeyValueService',
) as unknown as typeof KeyValueServiceClient;

export function createServiceClient(address: string, credentials: ChannelCredentials, options: ChannelOptions): KeyValueServiceClient {
  return new ServiceClient(address, credentials, options);
}

/** A Backup call whose messages are their bytes as the server sent them (the stub above does not decode them). */
export function rawBackupStream(
  client: KeyValueServiceClient,
  metadata: Metadata,
  options: Partial<CallOptions>,
): ClientReadableStream<Buffer> {
  return client.backup({}, metadata, options) as unknown as ClientReadableStream<Buffer>;
}
