// The connector one plugin process serves: made by Init from the host's
// request, required by every later call, closed by Close. Shared by the
// importer and exporter services.

import type { InitParams } from "./connector.ts";
import { hostOptions, type PbOptions } from "./convert.ts";
import { Code, KlosetError } from "./errors.ts";
import type { Runtime } from "../proc/runtime.ts";

/** The fields both services' InitRequest messages carry. */
export interface InitMessage {
  proto: string;
  config: { [key: string]: string };
  options?: PbOptions;
}

export class ConnectorSlot<C extends { close(): Promise<void> }> {
  #connector: C | undefined;

  constructor(
    readonly factory: (params: InitParams, runtime: Runtime) => Promise<C>,
    readonly runtime: Runtime,
  ) {}

  /** Makes the connector from an InitRequest. */
  async init(req: InitMessage): Promise<C> {
    this.#connector = await this.factory({
      proto: req.proto,
      config: { ...req.config },
      options: hostOptions(req.options),
    }, this.runtime);
    return this.#connector;
  }

  /** The connector; a call before Init is a FAILED_PRECONDITION status. */
  get(): C {
    if (!this.#connector) throw new KlosetError(Code.FAILED_PRECONDITION, "Init was not called");
    return this.#connector;
  }

  async close(): Promise<void> {
    await this.#connector?.close();
    this.#connector = undefined;
  }
}
