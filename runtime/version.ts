/**
 * Pier's version: reported by `/_/health`, sent to components in
 * `get-manifest`, and part of the key of a cached component manifest.
 *
 * @module
 */

/** Pier's version. */
export const PIER_VERSION = "0.1.0";
