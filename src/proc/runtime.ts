// What one plugin process shares between its layers: the pool of message
// buffers, the registries of child processes and temporary files that the
// shutdown path empties, the pacing of young collections, and the libc handle.
// An entry in src/main/ makes one and passes it down (to the server, which
// gives it to the connector's factory); a test makes its own, so two
// connectors in one test process share nothing.

import { type BufferPool, messageBufferPool } from "./buffer_pool.ts";
import { Children } from "./children.ts";
import { type Libc, loadLibc } from "./libc.ts";
import { GcPacer } from "./memory.ts";
import { TempFiles } from "./temp_files.ts";

export class Runtime {
  /** Message buffers of the data path (src/proc/buffer_pool.ts). */
  readonly buffers: BufferPool = messageBufferPool();
  /** Child tools, stopped at shutdown. */
  readonly children: Children = new Children();
  /** Temporary files, removed at shutdown. */
  readonly tempFiles: TempFiles = new TempFiles();
  /** Young collections paced by the short-lived buffers allocated. */
  readonly gc: GcPacer = new GcPacer();
  #libc: Libc | null | undefined;

  /** libc through FFI, opened on first use; null where it cannot be. */
  libc(): Libc | null {
    if (this.#libc === undefined) this.#libc = loadLibc();
    return this.#libc;
  }

  /** Stops every child and then removes every temporary file still registered. */
  async release(): Promise<void> {
    await this.children.stopAll();
    await this.tempFiles.removeAll();
  }
}
