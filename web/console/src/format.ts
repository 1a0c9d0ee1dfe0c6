// Times shown to people are in the installation's zone (the status says which), whatever the
// browser's own zone is.
import { currentLocale } from "./i18n";
import { status } from "./live";

function zone(): string {
  return status.value?.timezone ?? "Asia/Shanghai";
}

function intlLocale(): string {
  return currentLocale() === "zh" ? "zh-CN" : "en-GB";
}

export function timeOf(iso: string | null | undefined): string {
  if (!iso) return "";
  return new Intl.DateTimeFormat(intlLocale(), { timeZone: zone(), hour: "2-digit", minute: "2-digit", hour12: false }).format(new Date(iso));
}

export function dateTimeOf(iso: string | null | undefined): string {
  if (!iso) return "";
  return new Intl.DateTimeFormat(intlLocale(), {
    timeZone: zone(), month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(new Date(iso));
}

export function clockOf(epochMs: number): string {
  return new Intl.DateTimeFormat(intlLocale(), {
    timeZone: zone(), hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  }).format(new Date(epochMs));
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}
