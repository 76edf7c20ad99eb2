/**
 * Content hashes, shared by the compile cache and the build tools (`tools/`),
 * which import it from here: the server process may read only `runtime/`.
 *
 * @module
 */

/** Hex SHA-256 of some bytes (a string: of its UTF-8). */
export async function sha256(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const digest = await crypto.subtle.digest("SHA-256", data as BufferSource);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}
