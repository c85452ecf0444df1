/** Plain JSON: what configs, task configs and logs are made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A component in a config: `{ "type": "lstm", "options": { "hidden": 20 } }`. */
export interface ComponentConfig {
  type: string;
  options?: JsonObject;
}

/**
 * A function exported by a CommonJS module, called with plain-JSON `args`: how another thread (which shares
 * no objects with this one) rebuilds something this one built.
 */
export interface ModuleExport {
  /** The module: an absolute path, or a package name Node resolves from @l2l/core. */
  readonly module: string;
  /** The name of the exported function. */
  readonly export: string;
  readonly args?: JsonValue;
}
