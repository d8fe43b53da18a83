/**
 * Jest's globalSetup: every temporary file and directory of the run (the
 * tests', the servers' and other child processes' they start, which inherit
 * TMPDIR) goes under one directory, which tmp-teardown.js removes once the
 * run ends. KVTEST_KEEP_TMP=1 keeps it, to look at after a failure.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

module.exports = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-jest-'));
  process.env.KVTEST_RUN_TMPDIR = dir;
  process.env.TMPDIR = dir;
};
