/**
 * Finds a string in a decoded message that UTF-8 cannot carry. A JSON
 * request can spell a lone surrogate ("\ud800"); protobuf-es rejects it in
 * plain string fields but not inside google.protobuf.Value, and encoding it
 * would quietly turn it into U+FFFD, changing what the user sent. The gRPC
 * path rejects the same thing as invalid UTF-8 (decode-request.ts).
 */
import { ScalarType } from '@bufbuild/protobuf';
import { isReflectMessage, type ReflectMessage } from '@bufbuild/protobuf/reflect';

/** The path of the first ill-formed string ("value.struct_value.fields[\"a\"]"), or undefined. */
export function findUnpairedSurrogate(message: ReflectMessage, path = ''): string | undefined {
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const at = path === '' ? field.name : `${path}.${field.name}`;
    switch (field.fieldKind) {
      case 'scalar':
        if (field.scalar === ScalarType.STRING && !message.get(field).isWellFormed()) return at;
        break;
      case 'message': {
        const found = findUnpairedSurrogate(message.get(field), at);
        if (found !== undefined) return found;
        break;
      }
      case 'list': {
        if (field.listKind === 'enum' || (field.listKind === 'scalar' && field.scalar !== ScalarType.STRING)) break;
        let index = 0;
        for (const item of message.get(field)) {
          const found = ill(item, `${at}[${index++}]`);
          if (found !== undefined) return found;
        }
        break;
      }
      case 'map':
        for (const [key, value] of message.get(field)) {
          const itemAt = `${at}[${JSON.stringify(key)}]`;
          if (typeof key === 'string' && !key.isWellFormed()) return itemAt;
          const found = ill(value, itemAt);
          if (found !== undefined) return found;
        }
        break;
      case 'enum':
        break;
    }
  }
  return undefined;
}

function ill(value: unknown, at: string): string | undefined {
  if (typeof value === 'string') return value.isWellFormed() ? undefined : at;
  if (isReflectMessage(value)) return findUnpairedSurrogate(value, at);
  return undefined;
}
