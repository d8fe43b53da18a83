/**
 * The environment for an npm command run from a test: without the npm_*
 * variables that `npm test` sets for its own project (npm_config_*,
 * npm_package_*), so a child npm acts on the directory it is run in.
 */
export function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
}
