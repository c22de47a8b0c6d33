/**
 * Where files shipped beside the code are. In a checkout they sit in the repository (the sources run through tsx in
 * tests); in the bundle (`npm run build`) the build copies them into dist/ next to the code, so the bundle finds them
 * whatever the working directory is. PORTCULLIS_BUNDLED is defined by scripts/build.mjs only.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

declare const PORTCULLIS_BUNDLED: boolean | undefined;

const bundled = typeof PORTCULLIS_BUNDLED !== 'undefined';

/** The package's root directory: the one holding package.json and node_modules. */
export const PACKAGE_ROOT = fileURLToPath(new URL(bundled ? '..' : '../..', import.meta.url));

/** A shipped file, given its path in the repository and its name inside dist/. */
export function packageFile(repositoryPath: string, bundledPath: string): string {
  return bundled ? join(PACKAGE_ROOT, 'dist', bundledPath) : join(PACKAGE_ROOT, repositoryPath);
}
