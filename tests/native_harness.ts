/**
 * Builds native test components (`tests/fixtures/native_*.ts`) with the real
 * build tool, for `native_test.ts` and `native_attack_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildComponents } from "../tools/build.ts";
import { fromFileUrl } from "../runtime/paths.ts";
import { scratchDir } from "./scratch.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url)).replace(/\/$/, "");

/**
 * Builds the native fixtures into a new components dir (with `engine`, for
 * another engine than their pragma's); returns it.
 */
export async function buildNative(names: string[], engine?: string): Promise<string> {
  const componentsDir = await scratchDir("pier-native-");
  const results = await buildComponents(
    names.map((name) => `${ROOT}/tests/fixtures/${name}.ts`),
    { outDir: componentsDir, cacheDir: `${ROOT}/.build/components`, engine },
  );
  for (const result of results) assert.equal(result.status, "built", result.error);
  return componentsDir;
}
