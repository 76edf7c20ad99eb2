/**
 * `wasi:cli` for guests: stdout and stderr go to Pier's log line by line,
 * prefixed with the component's name; stdin is closed. The environment is a
 * capability (`capabilities/environment/`).
 *
 * @module
 */
import { ByteQueue, type ByteSink, InputStream, OutputStream } from "./io.ts";

/** The longest line a guest's output keeps buffered: a longer one is emitted in parts. */
export const MAX_LINE = 64 * 1024;

/** Collects bytes into lines and hands each finished line to `emit`. */
export class LineSink implements ByteSink {
  #pending = "";
  #decoder = new TextDecoder();
  constructor(readonly emit: (line: string) => void) {}
  write(bytes: Uint8Array): void {
    const lines = (this.#pending + this.#decoder.decode(bytes, { stream: true }))
      .split("\n");
    this.#pending = lines.pop()!;
    for (const line of lines) this.emit(line);
    if (this.#pending.length > MAX_LINE) this.flush();
  }
  /** Emits a last line that had no newline. */
  flush(): void {
    if (this.#pending) this.emit(this.#pending);
    this.#pending = "";
  }
}

/** What the guest's `wasi:cli` sees. */
export interface CliOptions {
  stdout: LineSink;
  stderr: LineSink;
}

class TerminalInput {}
class TerminalOutput {}

/** The `wasi:cli/*` import objects. */
export function cliImports(
  options: CliOptions,
): Record<string, Record<string, unknown>> {
  const stdout = new OutputStream(options.stdout);
  const stderr = new OutputStream(options.stderr);
  return {
    "wasi:cli/exit": {
      exit: (status: { tag: string }) => {
        throw new Error(`component called exit (${status.tag})`);
      },
      exitWithCode: (code: number) => {
        throw new Error(`component called exit (${code})`);
      },
    },
    "wasi:cli/stdin": { getStdin: () => new InputStream(ByteQueue.of(null)) },
    "wasi:cli/stdout": { getStdout: () => stdout },
    "wasi:cli/stderr": { getStderr: () => stderr },
    "wasi:cli/terminal-input": { TerminalInput },
    "wasi:cli/terminal-output": { TerminalOutput },
    "wasi:cli/terminal-stdin": { getTerminalStdin: () => undefined },
    "wasi:cli/terminal-stdout": { getTerminalStdout: () => undefined },
    "wasi:cli/terminal-stderr": { getTerminalStderr: () => undefined },
  };
}
