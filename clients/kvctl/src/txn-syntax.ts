/**
 * The small language of `kvctl txn`, after etcdctl's: a compare is
 * TARGET(KEY) OP VALUE, an op is VERB KEY [JSON]. A key is written bare
 * (up to the first space, or the closing parenthesis in a compare) or as a
 * JSON string ("a key with spaces"); "" is the empty prefix of clear.
 */
import { Compare, Op, type CompareOp, type JsonValue, type TxnCompare, type TxnOp } from '@kv/client';
import { CliError } from './cli-error';
import { parseStrictJson, unpairedSurrogate } from './strict-text';

export const COMPARE_SYNTAX =
  "TARGET(KEY) OP VALUE: TARGET mod|create|version|lease|value, OP = != < > (value: JSON), e.g. 'mod(user/1) = 3'";
export const OP_SYNTAX = 'get KEY | set KEY JSON | update KEY JSON | del KEY | clear PREFIX, e.g. \'set user/1 {"n":1}\'';

const NUMERIC_TARGETS = { mod: Compare.modRevision, create: Compare.createRevision, version: Compare.version, lease: Compare.lease };
const OPS: Record<string, CompareOp> = { '=': '==', '==': '==', '!=': '!=', '<': '<', '>': '>' };

/** How a message names a compare or op: by its flag and the text as typed, e.g. `--then "set a 1"`. */
export function typed(flag: '--if' | '--then' | '--else', text: string): string {
  return `${flag} "${text}"`;
}

export function parseCompare(text: string): TxnCompare {
  // The operator is every =, !, < and > in a row (no JSON value starts with one), so ">= 72" is refused as ">=", not read as "> (= 72)".
  const match = /^\s*(\w+)\(\s*("(?:[^"\\]|\\.)*"|[^)]*?)\s*\)\s*([=!<>]+)\s*(.+?)\s*$/.exec(text);
  const where = typed('--if', text);
  if (match === null) throw new CliError(`${where}: expected ${COMPARE_SYNTAX}`);
  const [, target, rawKey, rawOp, rawValue] = match;
  const key = unquote(rawKey, where);
  const op: CompareOp | undefined = OPS[rawOp];
  if (op === undefined) throw new CliError(`${where}: "${rawOp}" is not an operator: use =, !=, < or >${instead(target, rawOp, rawValue)}`);
  if (target === 'value') return Compare.value(key, op, json(rawValue, where));
  // Own properties only: "constructor(k)" is not a target because every object has one.
  const make = Object.hasOwn(NUMERIC_TARGETS, target) ? NUMERIC_TARGETS[target as keyof typeof NUMERIC_TARGETS] : undefined;
  if (make === undefined) throw new CliError(`${where}: "${target}" is not mod, create, version, lease or value`);
  if (!/^\d+$/.test(rawValue) || !Number.isSafeInteger(Number(rawValue))) {
    throw new CliError(`${where}: ${target} compares with a whole number, not ${rawValue}`);
  }
  return make(key, op, Number(rawValue));
}

/** For ">= 72" on a revision, version or lease (whole numbers): the compare that means it, "> 71". */
function instead(target: string, rawOp: string, rawValue: string): string {
  if (!Object.hasOwn(NUMERIC_TARGETS, target) || !/^\d+$/.test(rawValue) || !Number.isSafeInteger(Number(rawValue))) return '';
  const value = Number(rawValue);
  if (rawOp === '>=' && value > 0) return ` (for >= ${value}, write > ${value - 1})`;
  if (rawOp === '<=') return ` (for <= ${value}, write < ${value + 1})`;
  return '';
}

export function parseOp(text: string, flag: '--then' | '--else'): TxnOp {
  const match = /^\s*(\w+)\s+("(?:[^"\\]|\\.)*"|\S+)\s*(.*?)\s*$/.exec(text);
  const where = typed(flag, text);
  if (match === null) throw new CliError(`${where}: expected ${OP_SYNTAX}`);
  const [, verb, rawKey, rest] = match;
  const key = unquote(rawKey, where);
  const noValue = (): void => {
    if (rest !== '') throw new CliError(`${where}: ${verb} takes a key and nothing more`);
  };
  switch (verb) {
    case 'get':
      noValue();
      return Op.get(key);
    case 'del':
      noValue();
      return Op.delete(key);
    case 'clear':
      noValue();
      return Op.clear(key);
    case 'set':
      return Op.set(key, json(rest, where));
    case 'update':
      return Op.update(key, json(rest, where));
    default:
      throw new CliError(`${where}: "${verb}" is not get, set, update, del or clear`);
  }
}

function unquote(raw: string, where: string): string {
  if (!raw.startsWith('"')) return raw;
  let key: string;
  try {
    key = JSON.parse(raw) as string;
  } catch {
    throw new CliError(`${where}: ${raw} is not a JSON string`);
  }
  const lone = unpairedSurrogate(key);
  if (lone !== undefined) throw new CliError(`${where}: the key ${raw} has an unpaired surrogate ${lone} (UTF-8 cannot carry it)`);
  return key;
}

function json(text: string, where: string): JsonValue {
  if (text === '') throw new CliError(`${where}: a JSON value is missing`);
  return parseStrictJson(
    text,
    `${where}: the value`,
    (error) => `${where}: ${text} is not JSON (${error.message}; a string needs JSON quotes)`,
  ) as JsonValue;
}

/**
 * A server's refusal of a txn in the user's terms: the server names compares and ops as the request does ("compare 1 on
 * key ...", "success op 0", "the failure ops ..."), where the user wrote --if, --then and --else. Each is named as typed.
 */
export function inUserTerms(message: string, typedAs: { if: string[]; then: string[]; else: string[] }): string {
  const flags = { success: '--then', failure: '--else' } as const;
  const name = (flag: '--if' | '--then' | '--else', list: string[], index: string): string | undefined => {
    const text = list[Number(index)];
    return text === undefined ? undefined : typed(flag, text);
  };
  return message
    .replace(/^compare (\d+) on key "(?:[^"\\]|\\.)*"/, (wire, index: string) => name('--if', typedAs.if, index) ?? wire)
    .replace(/^(success|failure) op (\d+)/, (wire, branch: 'success' | 'failure', index: string) => {
      const flag = flags[branch];
      return name(flag, branch === 'success' ? typedAs.then : typedAs.else, index) ?? wire;
    })
    .replace(/^(the|a transaction has at most \d+) (success|failure) ops\b/, (_, head: string, branch: 'success' | 'failure') => {
      return `${head} ${flags[branch]} ops`;
    })
    .replace(/^(a transaction has at most \d+) compares\b/, '$1 --if compares');
}
