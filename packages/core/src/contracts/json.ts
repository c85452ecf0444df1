/** Plain JSON: what configs, task configs and logs are made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A component in a config: `{ "type": "lstm", "options": { "hidden": 20 } }`. */
export interface ComponentConfig {
  type: string;
  options?: JsonObject;
}
