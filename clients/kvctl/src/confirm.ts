import { createInterface } from 'node:readline';

/** Asks a yes/no question on the terminal; only "y" or "yes" is yes, and no answer (Ctrl-D) is no. */
export function confirm(question: string, input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<boolean> {
  return new Promise((resolve) => {
    const lines = createInterface({ input, terminal: false });
    output.write(`${question} [y/N] `);
    lines.once('line', (answer) => {
      resolve(/^(y|yes)$/i.test(answer.trim())); // before close(), whose 'close' event would answer no
      lines.close();
    });
    lines.once('close', () => resolve(false));
  });
}
