// Builds web/scripts/xtest.ts into one Node-runnable ESM file for the cross-language tests
// (tests/unit/web/test_cross.py): `vite build --config web/scripts/xtest.vite.config.mts`, output in $XTEST_OUT.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  logLevel: "warn",
  build: {
    outDir: process.env.XTEST_OUT ?? fileURLToPath(new URL("../../.xtest", import.meta.url)),
    emptyOutDir: true,
    target: "node20",
    minify: false,
    reportCompressedSize: false,
    lib: {
      entry: fileURLToPath(new URL("./xtest.ts", import.meta.url)),
      formats: ["es"],
      fileName: () => "xtest.mjs",
    },
  },
});
