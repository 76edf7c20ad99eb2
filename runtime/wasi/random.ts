/**
 * `wasi:random` for guests, from the host's CSPRNG.
 *
 * @module
 */

/** Web Crypto fills at most 64 KiB per call. */
const CRYPTO_CHUNK = 65536;

function randomBytes(len: bigint): Uint8Array {
  const bytes = new Uint8Array(Number(len));
  for (let i = 0; i < bytes.length; i += CRYPTO_CHUNK) {
    crypto.getRandomValues(bytes.subarray(i, i + CRYPTO_CHUNK));
  }
  return bytes;
}

function randomU64(): bigint {
  return new DataView(randomBytes(8n).buffer).getBigUint64(0);
}

/** The `wasi:random/*` import objects. */
export function randomImports(): Record<string, Record<string, unknown>> {
  return {
    "wasi:random/random": {
      getRandomBytes: randomBytes,
      getRandomU64: randomU64,
    },
    "wasi:random/insecure": {
      getInsecureRandomBytes: randomBytes,
      getInsecureRandomU64: randomU64,
    },
    "wasi:random/insecure-seed": {
      insecureSeed: () => [randomU64(), randomU64()],
    },
  };
}
