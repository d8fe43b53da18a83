/**
 * Jest's globalSetup.
 *
 * The tests run the compiled server and kvctl (dist/, as users run them), so
 * first the build must be the sources' own: if the digest the last build wrote
 * (scripts/build-digest.js) is not the sources' digest, this runs
 * `npm run build` before any test starts.
 *
 * Then every temporary file and directory of the run (the tests', the
 * servers' and other child processes' they start, which inherit TMPDIR) goes
 * under one directory, which tmp-teardown.js removes once the run ends.
 * KVTEST_KEEP_TMP=1 keeps it, to look at after a failure.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { builtDigest, sourcesDigest } = require('../../scripts/build-digest.js');

const ROOT = path.resolve(__dirname, '../..');

module.exports = () => {
  if (builtDigest() !== sourcesDigest()) {
    process.stderr.write('\nThe sources changed since the last build (or there is none): npm run build\n');
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    execFileSync(npm, ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (builtDigest() !== sourcesDigest()) throw new Error('npm run build did not leave a build of the sources as they are');
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-jest-'));
  process.env.KVTEST_RUN_TMPDIR = dir;
  process.env.TMPDIR = dir;
};
