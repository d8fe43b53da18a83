// Preloaded (node --require) into a server under test: at exit, writes the
// file of every CommonJS module the process loaded, one a line, to
// $KV_LOADED_MODULES_FILE (written before the process is gone, unlike a last
// line on stderr, which may arrive after the parent hears of the exit).
const fs = require('node:fs');

process.on('exit', () => fs.writeFileSync(process.env.KV_LOADED_MODULES_FILE, Object.keys(require.cache).join('\n')));
