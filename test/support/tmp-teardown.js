/** Jest's globalTeardown: removes the run's temporary directory (tmp-setup.js), unless KV_KEEP_TEST_TMP=1. */
const fs = require('node:fs');

module.exports = () => {
  const dir = process.env.KV_JEST_TMPDIR;
  if (dir === undefined) return;
  if (process.env.KV_KEEP_TEST_TMP === '1') {
    process.stderr.write(`kept the test run's temporary files in ${dir}\n`);
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
};
