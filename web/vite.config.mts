// The dApp's build (`make web`, `npm run web:build`): web/ -> king/static/, which the King serves on
// king.web_listen. Unit tests (`npm run web:test`) run with Vitest from web/test/.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  base: "/",
  build: {
    outDir: fileURLToPath(new URL("../king/static", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1024,
  },
  test: {
    root,
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
