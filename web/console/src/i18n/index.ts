import { createI18n } from "vue-i18n";
import { en, type Messages, zh } from "./messages";

export type Locale = "zh" | "en";
const STORED = "lightctl.locale";

function initialLocale(): Locale {
  const stored = localStorage.getItem(STORED);
  return stored === "en" ? "en" : "zh";
}

/** Keys asked for that a language lacks: the browser tests read this and fail on any. */
export const missingKeys = new Set<string>();

export const i18n = createI18n<[Messages], Locale, false>({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: false,
  messages: { zh, en },
  missingWarn: false,
  fallbackWarn: false,
  missing: (locale: string, key: string) => {
    missingKeys.add(`${locale}:${key}`);
    return key;
  },
});

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale;
  localStorage.setItem(STORED, locale);
  document.documentElement.lang = locale === "zh" ? "zh-CN" : "en";
}

export function currentLocale(): Locale {
  return i18n.global.locale.value;
}

/** A translation of a value that comes from the daemon (a holiday, a link state): the key when
 * the language has it, else the fallback key, so that an unforeseen value is never shown raw. */
export function tKnown(prefix: string, value: string, fallback: string): string {
  const key = `${prefix}.${value}`;
  return i18n.global.te(key) ? i18n.global.t(key) : i18n.global.t(`${prefix}.${fallback}`);
}
