// The console's strings: zh.json (the default language) and en.json, with exactly the same keys:
// vue-tsc refuses an English file that lacks a key or has one more (the type below), a Python test
// checks that every key the sources name exists (tests/test_console_messages.py), and the browser
// tests fail on any key missing at run time.
import enMessages from "./en.json";
import zhMessages from "./zh.json";

export type Messages = typeof zhMessages;

type Exactly<T, U> = T extends U ? (U extends T ? T : never) : never;

export const zh: Messages = zhMessages;
export const en: Exactly<typeof enMessages, Messages> = enMessages;
