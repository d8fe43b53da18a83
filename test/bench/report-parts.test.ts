/**
 * docs/benchmarks.md is rewritten part by part: the sections of the parts a
 * run did not measure are read back from the report already there and kept
 * as they were, markers and all.
 */
import { readPartBlocks } from '../../bench/report-parts';

const report = [
  '# Benchmarks',
  '',
  '<!-- bench part: compare -->',
  '## Targets',
  '',
  '_Measured on day one._',
  '| a | b |',
  '<!-- bench part end -->',
  '',
  '## HTTP/1.1 JSON',
  '',
  '<!-- bench part: nonsense -->',
  '## Not a part',
  '<!-- bench part end -->',
  '<!-- bench part: scale -->',
  '## Scale of data',
  'cut off before its end marker',
].join('\n');

test('each part section is read back verbatim, markers included', () => {
  const blocks = readPartBlocks(report);
  expect(blocks.compare).toEqual([
    '<!-- bench part: compare -->',
    '## Targets',
    '',
    '_Measured on day one._',
    '| a | b |',
    '<!-- bench part end -->',
    '',
  ]);
});

test('text outside the markers, unknown parts and an unterminated section are not kept', () => {
  expect(Object.keys(readPartBlocks(report))).toEqual(['compare']);
});
