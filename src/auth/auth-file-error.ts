/**
 * A mistake in the auth file (or one that cannot be read or written); the
 * message names the file and the place. Its own module: catching it must not
 * load the YAML parser, which loads only when there is an auth file.
 */
export class AuthFileError extends Error {}
