/**
 * Watches a directory for changes: `Deno.watchFs` for a quick answer, and a
 * slow poll besides, because a link's target changing sends no event for the
 * link (and a directory created after the start cannot be watched).
 *
 * @module
 */
import { log } from "../log.ts";

/** How a directory is watched. */
export interface WatchOptions {
  /** Quiet time after an event before `onChange` runs: a burst of events makes one call. */
  debounceMs: number;
  /** `onChange` also runs this often, events or not. */
  pollMs: number;
}

/** Quick enough for a save to show within a second, long enough for a copy's burst of writes. */
export const DEFAULT_WATCH: WatchOptions = { debounceMs: 100, pollMs: 1000 };

/**
 * Calls `onChange` after anything in `dir` changes, and every
 * `options.pollMs`; `onChange` looks for itself what changed. Returns a
 * function that stops the watching.
 */
export function watchDirectory(
  dir: string,
  onChange: () => void,
  options: WatchOptions = DEFAULT_WATCH,
): () => void {
  let debounce: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let watcher: Deno.FsWatcher | undefined;
  try {
    watcher = Deno.watchFs(dir, { recursive: false });
  } catch (error) {
    log.warn(
      `cannot watch ${dir} (${(error as Error).message}): looking every ${options.pollMs / 1000} s`,
    );
  }
  void (async () => {
    if (!watcher) return;
    try {
      for await (const _ of watcher) {
        clearTimeout(debounce);
        debounce = setTimeout(onChange, options.debounceMs);
      }
    } catch (error) {
      if (stopped) return;
      log.warn(
        `watching ${dir} stopped (${(error as Error).message}): looking every ${
          options.pollMs / 1000
        } s`,
      );
    }
  })();
  const poll = setInterval(onChange, options.pollMs);
  return () => {
    stopped = true;
    watcher?.close();
    clearInterval(poll);
    clearTimeout(debounce);
  };
}

/**
 * `task` run one at a time: a call while it runs makes it run once more
 * afterwards (whatever changed meanwhile is looked at), and resolves then.
 * A failure is logged.
 */
export function oneAtATime(name: string, task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    const loop = async () => {
      do {
        again = false;
        await task();
      } while (again);
    };
    return running = loop().catch((error) =>
      log.error(`${name}: ${(error as Error).stack ?? error}`)
    )
      .finally(() => running = undefined);
  };
}
