#!/usr/bin/env node
// The file npm links as `kv-server`: committed executable, so `npx kv-server` and
// `npm link` keep working after a rebuild writes dist/main.js anew (without the x bit).
require('../dist/main.js');
