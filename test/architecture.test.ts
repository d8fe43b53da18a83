/**
 * The layering DESIGN.md promises, checked on the source: an engine never
 * sees protobuf or gRPC types, and the server layer never touches files
 * (reflection reads the descriptor sets buf wrote, and nothing else does).
 */
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, '../src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every module specifier a file imports or requires. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) found.push(match[1]);
  return found;
}

const relative = (file: string): string => path.relative(SRC, file);

test('the scanner sees the imports it is meant to police', () => {
  // A scanner that finds nothing would pass everything below.
  expect(importsOf(path.join(SRC, 'server/reflection.ts'))).toEqual(expect.arrayContaining(['node:fs', '@grpc/grpc-js']));
});

test('store/ imports neither generated code nor gRPC nor protobuf', () => {
  const offenders: string[] = [];
  for (const file of sourceFiles(path.join(SRC, 'store'))) {
    for (const spec of importsOf(file)) {
      if (spec.startsWith('@grpc/') || spec.startsWith('@bufbuild/') || /(^|\/)gen(\/|$)/.test(spec) || spec.includes('/server/')) {
        offenders.push(`${relative(file)} imports ${spec}`);
      }
    }
  }
  expect(offenders).toEqual([]);
});

test('server/ touches the file system only in reflection.ts', () => {
  const offenders: string[] = [];
  for (const file of sourceFiles(path.join(SRC, 'server'))) {
    if (relative(file) === path.join('server', 'reflection.ts')) continue;
    for (const spec of importsOf(file)) {
      if (/^(node:)?fs(\/promises)?$/.test(spec) || spec.includes('/store/file')) offenders.push(`${relative(file)} imports ${spec}`);
    }
  }
  expect(offenders).toEqual([]);
});
