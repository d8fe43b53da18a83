import { readFileSync } from 'node:fs';
import { firstInvalidUtf8Byte, hex, showBytes } from './strict-text';

/**
 * Why one of kvctl's arguments is refused for not being UTF-8, or undefined.
 * Node decodes the command line before kvctl sees it, each byte sequence
 * that is not UTF-8 becoming U+FFFD, so `kvctl set $'caf\xe9' 1` would write
 * the key "caf\ufffd". Only the raw bytes tell such an argument from one
 * that holds U+FFFD itself: Linux has them in /proc/self/cmdline. Where they
 * cannot be read (another system), or do not line up with args, nothing is
 * refused.
 */
export function invalidUtf8Argument(args: string[]): string | undefined {
  if (!args.some((arg) => arg.includes('\ufffd'))) return undefined;
  let cmdline: Buffer;
  try {
    cmdline = readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
  // NUL-terminated words: node, its own flags, the script, then args.
  const words: Buffer[] = [];
  for (let start = 0, end = cmdline.indexOf(0); end >= 0; start = end + 1, end = cmdline.indexOf(0, start)) {
    words.push(cmdline.subarray(start, end));
  }
  const raw = words.slice(words.length - args.length);
  if (raw.length !== args.length) return undefined;
  for (let i = 0; i < args.length; i++) {
    // The same argument as Node decoded it (else the words do not line up: say nothing).
    if (!args[i].includes('\ufffd') || raw[i].toString('utf8') !== args[i]) continue;
    const at = firstInvalidUtf8Byte(raw[i]);
    if (at !== undefined) {
      return `argument ${i + 1} ("${showBytes(raw[i])}") is not valid UTF-8 (byte 0x${hex(raw[i][at])} at offset ${at}); kvctl sends keys and values as UTF-8 text`;
    }
  }
  return undefined;
}
