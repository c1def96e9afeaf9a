/** autotune's version, as package.json says: `--version`, telemetry's service.version and the library's daemon. */
export const VERSION = "2.0.0"
