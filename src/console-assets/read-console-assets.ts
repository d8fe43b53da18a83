/**
 * The web console's built files (npm run build writes them to dist/console),
 * read once into memory and handed to the server as a lookup: the server
 * layer itself never touches files. Only files under that directory are
 * ever served; a URL path is a key in the map, never joined into a path.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ConsoleAsset, ConsoleAssets } from '../server/http/console-route';

/** dist/console, from src/console-assets (tsx) and dist/console-assets (built) alike. */
export const CONSOLE_DIR = path.resolve(__dirname, '../../dist/console');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** The lookup, or undefined when the console was not built (no index.html). */
export function readConsoleAssets(dir: string = CONSOLE_DIR): ConsoleAssets | undefined {
  const files = new Map<string, ConsoleAsset>();
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const urlPath = '/' + path.relative(dir, full).split(path.sep).join('/');
        const contentType = CONTENT_TYPES[path.extname(entry.name)] ?? 'application/octet-stream';
        files.set(urlPath, { body: readFileSync(full), contentType });
      }
    }
  };
  try {
    walk(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (!files.has('/index.html')) return undefined;
  return (urlPath) => files.get(urlPath === '/' ? '/index.html' : urlPath);
}
