/**
 * `wasi:filesystem` for guests. Pier grants no directories yet, so a guest
 * sees no preopens and every filesystem call fails with `access`.
 *
 * @module
 */

function denied(): never {
  throw "access";
}

/** `wasi:filesystem/types.descriptor`: never handed out without a preopen. */
class Descriptor {
  readViaStream = denied;
  writeViaStream = denied;
  appendViaStream = denied;
  getType = denied;
  stat = denied;
  statAt = denied;
  openAt = denied;
  readDirectory = denied;
  read = denied;
}

class DirectoryEntryStream {
  readDirectoryEntry = denied;
}

/** The `wasi:filesystem/*` import objects. */
export function filesystemImports(): Record<string, Record<string, unknown>> {
  return {
    "wasi:filesystem/preopens": { getDirectories: () => [] },
    "wasi:filesystem/types": {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode: () => undefined,
    },
  };
}
