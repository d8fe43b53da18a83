/** Reads and checks the auth file (--auth-file), at start and on every SIGHUP. */
import { readFileSync } from 'node:fs';
import { type AuthConfig, parseAuthConfig } from './auth-config';
import { AuthFileError } from './auth-file-error';

/** Throws AuthFileError with a one-line reason (unreadable, not YAML/JSON, or a bad entry). */
export function readAuthFile(file: string): AuthConfig {
  return readAuthText(file).config;
}

/** The auth file's text and what it says, checked; throws AuthFileError as readAuthFile does. */
export function readAuthText(file: string): { text: string; config: AuthConfig } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AuthFileError(`cannot read the auth file ${file}: ${(error as Error).message}`);
  }
  return { text, config: parseAuthConfig(text, file) };
}
