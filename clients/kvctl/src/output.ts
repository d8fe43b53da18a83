import stringWidth from 'string-width';
import type { OutputMode } from './global-options';

/** Rows of a table, the first one its header. */
export type Table = string[][];

/** One result in each output form. */
export interface Printable {
  /** -o json: printed as indented JSON. */
  json: unknown;
  /** -o table (a person at a terminal): a table, or free text. */
  table: Table | string;
  /** -o value: the bare value, for $(...) in scripts. */
  value: string;
}

/** How each item of a list appears in each output form. */
export interface ListForms<T> {
  json(item: T): unknown;
  header: string[];
  row(item: T): string[];
  value(item: T): string;
}

/** Writes results to stdout in the chosen output mode. */
export class Printer {
  constructor(
    readonly mode: OutputMode,
    private readonly write: (text: string) => void,
  ) {}

  print(result: Printable): void {
    if (this.mode === 'json') this.write(`${JSON.stringify(result.json, null, 2)}\n`);
    else if (this.mode === 'value') this.write(`${result.value}\n`);
    else this.write(`${typeof result.table === 'string' ? result.table : renderTable(result.table)}\n`);
  }

  /**
   * Prints one item of a stream that may never end (watch): as one line of
   * compact JSON (JSON Lines, for jq and grep), a line of fields, or the bare value.
   */
  printLine(item: { json: unknown; row: string[]; value: string }): void {
    if (this.mode === 'json') this.write(`${JSON.stringify(item.json)}\n`);
    else if (this.mode === 'value') this.write(`${item.value}\n`);
    else this.write(`${item.row.map(escapeForTerminal).join('  ')}\n`);
  }

  /**
   * Prints a list as it arrives: a JSON array written element by element,
   * one value per line, or (for a person) a table once the list is complete.
   * Nothing is written before the first item (or the end of an empty list),
   * so a call that fails at once leaves stdout empty, not a stray "[".
   */
  async printList<T>(items: AsyncIterable<T>, forms: ListForms<T>): Promise<void> {
    if (this.mode === 'table') {
      const rows: Table = [forms.header];
      for await (const item of items) rows.push(forms.row(item));
      this.write(`${renderTable(rows)}\n`);
      return;
    }
    let first = true;
    for await (const item of items) {
      if (this.mode === 'json') {
        const element = JSON.stringify(forms.json(item), null, 2).replaceAll('\n', '\n  ');
        this.write(`${first ? '[' : ','}\n  ${element}`);
      } else {
        this.write(`${forms.value(item)}\n`);
      }
      first = false;
    }
    if (this.mode === 'json') this.write(first ? '[]\n' : '\n]\n');
  }
}

/**
 * Text for a terminal: control characters (C0, DEL, C1: ESC starts escape
 * sequences a key or value must not send to a person's terminal) and lone
 * surrogates written as \u001b, as JSON would.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(
    // Control characters are what it looks for.
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Columns padded to their widest cell, two spaces apart; every cell escaped
 * for a terminal. Widths are what a terminal shows, not code points: a CJK
 * character or an emoji takes two columns, a combining accent none.
 */
export function renderTable(table: Table): string {
  const rows = table.map((row) => row.map(escapeForTerminal));
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => stringWidth(row[column] ?? ''))));
  return rows
    .map((row) =>
      row.map((cell, column) => (column === row.length - 1 ? cell : cell + ' '.repeat(widths[column] - stringWidth(cell)))).join('  '),
    )
    .join('\n');
}

/** A value as -o value prints it: strings bare (like jq -r), anything else as compact JSON. */
export function bareValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
