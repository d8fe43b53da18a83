/** Jest's globalTeardown: removes the run's temporary directory (global-setup.js), unless KVTEST_KEEP_TMP=1. */
const fs = require('node:fs');

module.exports = () => {
  const dir = process.env.KVTEST_RUN_TMPDIR;
  if (dir === undefined) return;
  if (process.env.KVTEST_KEEP_TMP === '1') {
    process.stderr.write(`kept the test run's temporary files in ${dir}\n`);
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
};
