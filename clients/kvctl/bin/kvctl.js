#!/usr/bin/env node
// The file npm links as `kvctl`. It exists before `prepare` compiles dist/
// (npm links bins first), so the link is made on a fresh install too.
require('../dist/main.js').runCli();
