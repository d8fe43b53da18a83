import { readFileSync } from 'node:fs';
import path from 'node:path';

/** kvctl's package version, read at run time: package.json sits one level above both src/ and dist/. */
export const KVCTL_VERSION = (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
