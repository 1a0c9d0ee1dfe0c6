// The console is built into dist/ (not committed) and served by the daemon (web/console_static.py):
// hashed names under assets/, nothing fetched from anywhere else at run time.
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [vue()],
  base: "/",
  define: {
    __VUE_OPTIONS_API__: "false",
    __VUE_PROD_DEVTOOLS__: "false",
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false",
    __INTLIFY_JIT_COMPILATION__: "true",
    __INTLIFY_DROP_MESSAGE_COMPILER__: "false",
    __INTLIFY_PROD_DEVTOOLS__: "false",
  },
  resolve: {
    alias: {
      // the runtime build: the JSON messages are compiled just in time, without eval (CSP-friendly)
      "vue-i18n": "vue-i18n/dist/vue-i18n.runtime.esm-bundler.js",
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsDir: "assets",
    chunkSizeWarningLimit: 1200,
    reportCompressedSize: false,
  },
});
