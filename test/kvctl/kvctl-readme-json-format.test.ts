/**
 * README's kvctl JSON output blocks show exactly what kvctl prints: 2-space
 * JSON, every array element and object member on its own line (JSON.stringify
 * with indent 2), or, for a stream (watch, jq -c), one compact value a line.
 * test/readme checks the values; this checks the text.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../support/server-process';

test('every ```json block after an npx kvctl block is byte-identical to how kvctl prints it', () => {
  const fences = [...readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8').matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1],
    body: m[2],
  }));
  const blocks = fences.filter(
    (fence, i) => fence.lang === 'json' && i > 0 && fences[i - 1].lang === 'sh' && fences[i - 1].body.includes('npx kvctl '),
  );
  expect(blocks.length).toBeGreaterThanOrEqual(5);
  for (const { body } of blocks) {
    const lines = body.trimEnd().split('\n');
    const compactLines = lines.length > 1 && lines.every((line) => /^[{[].*[}\]]$/.test(line));
    const expected = compactLines
      ? lines.map((line) => JSON.stringify(JSON.parse(line))).join('\n') + '\n'
      : `${JSON.stringify(JSON.parse(body), null, 2)}\n`;
    expect(body).toBe(expected);
  }
});
