/**
 * What `npm run build` was built from: one SHA-256 over the path and bytes of
 * every file the build reads (the server's, the SDK's, kvctl's and the web
 * console's sources and their build configuration).
 *
 *   node scripts/build-digest.js --write   after a build (the build script's last step): writes dist/.build-digest
 *   node scripts/build-digest.js           prints whether dist/ was built from the sources as they are
 *
 * The tests run the compiled server and kvctl, as users do; their global
 * setup (test/support/global-setup.js) rebuilds first when the digest differs,
 * so a test never runs a stale build.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const DIGEST_FILE = path.join(ROOT, 'dist', '.build-digest');

/** Directories read whole, and single files; relative to the repository. */
const DIRECTORIES = ['src', 'clients/typescript/src', 'clients/kvctl/src', 'clients/kvctl/bin', 'console/src'];
const FILES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'clients/typescript/package.json',
  'clients/typescript/tsconfig.json',
  'clients/kvctl/package.json',
  'clients/kvctl/tsconfig.json',
  'console/index.html',
  'console/tsconfig.json',
  'console/vite.config.mjs',
];

function filesUnder(relative) {
  const found = [];
  for (const entry of fs.readdirSync(path.join(ROOT, relative), { withFileTypes: true })) {
    const child = path.posix.join(relative, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(child));
    else if (entry.isFile()) found.push(child);
  }
  return found;
}

/** The digest of the sources as they are now. */
function sourcesDigest() {
  const hash = crypto.createHash('sha256');
  const files = [...DIRECTORIES.flatMap(filesUnder), ...FILES.filter((file) => fs.existsSync(path.join(ROOT, file)))].sort();
  for (const file of files) {
    const bytes = fs.readFileSync(path.join(ROOT, file));
    hash.update(`${file}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

/** The digest the last build wrote, or undefined if there is none. */
function builtDigest() {
  try {
    return fs.readFileSync(DIGEST_FILE, 'utf8').trim();
  } catch {
    return undefined;
  }
}

module.exports = { sourcesDigest, builtDigest, DIGEST_FILE };

if (require.main === module) {
  if (process.argv.includes('--write')) {
    fs.writeFileSync(DIGEST_FILE, `${sourcesDigest()}\n`);
  } else {
    const current = builtDigest() === sourcesDigest();
    console.log(current ? 'dist/ was built from the sources as they are' : 'dist/ is older than the sources: run npm run build');
    process.exitCode = current ? 0 : 1;
  }
}
