// Builds the web console into dist/console, which the server serves on its HTTP port.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  build: { outDir: '../dist/console', emptyOutDir: true, assetsDir: 'assets', sourcemap: false },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // `npm run console:dev` serves the console with hot reload and sends RPCs to a kv-server with --http-listen 127.0.0.1:8080.
  server: { proxy: { '/kv.v1.KeyValueService': 'http://127.0.0.1:8080' } },
});
