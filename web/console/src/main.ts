import { createApp } from "vue";
import App from "./App.vue";
import { i18n, missingKeys, setLocale, currentLocale } from "./i18n";
import { dropSocket, live } from "./live";
import "./style.css";

setLocale(currentLocale());
createApp(App).use(i18n).mount("#app");

// What the browser tests and `lightctl bench console` read (no other use): keys a language lacked,
// the connection's state, and a way to drop the socket as a network failure would.
declare global {
  interface Window {
    lightctlConsole: { missingKeys: () => string[]; live: typeof live; dropSocket: () => void; mapPixel?: (site: string) => [number, number] | null };
  }
}
window.lightctlConsole = { missingKeys: () => [...missingKeys], live, dropSocket };
