// The API's answers and the WebSocket's events, as the console reads them (web/*.py are the truth;
// the OpenAPI document at /api/v1/openapi.json describes them).

export interface ControllerStatus {
  protocol: string;
  site: string;
  district: string;
  link: string;
  since: number | null;
  last_error: string | null;
  pending: number;
  handed_back: number;
  power_w: number | null;
  energy_kwh: number | null;
  faults: string[];
}

export interface Override {
  id: number;
  kind: string;
  scene: string | null;
  target: string;
  user: string;
  until: string | null;
  cap: number | null;
}

export interface Status {
  installation: string;
  timezone: string;
  now: string;
  calendar_warnings: string[];
  controllers_total: number;
  controllers_online: number;
  channels_pending: number;
  channels_handed_back: number;
  overrides: Override[];
  controllers: Record<string, ControllerStatus>;
  /** A city daemon's status only: each district daemon as the city sees it. */
  districts?: Record<string, DistrictState>;
}

export interface DistrictState {
  name: string | null;
  name_en: string | null;
  online: boolean;
  complete: boolean;
  since: string;
  controllers: number;
  controllers_online: number;
}

export type ResultStatus = "confirmed" | "unconfirmed" | "failed" | "sent";

export interface ControllerResult {
  status: ResultStatus;
  elapsed_s: number;
  operations: number;
  channels: number;
  error?: string;
  error_kind?: string;
}

export interface CommandReport {
  command_id: number;
  scene: string;
  target: string;
  elapsed_s: number;
  summary: { confirmed: number; unconfirmed: number; failed: number };
  controllers: Record<string, ControllerResult>;
}

export interface Metrics {
  power_kw: number;
  inventory: Record<string, { intelligent_control_rate?: number | null; led_share?: number | null }>;
  lighting_on: { lighting_on_rate: number | null };
}

export interface SiteInfo {
  id: string;
  name: string;
  name_en: string;
  location: { lat: number; lon: number };
  tags: string[];
  controllers: { id: string; name: string; protocol: string; channels: number }[];
  legacy_circuits: number;
}

export interface Sites {
  installation: { name: string; name_en: string; location: { lat: number; lon: number } };
  districts: { id: string; name: string; name_en: string; sites: SiteInfo[] }[];
}

export interface SceneSummary {
  id: string;
  name: string;
  rules: Record<string, unknown>[];
}

export interface SceneDetail extends SceneSummary {
  base: string | null;
  channels: number;
  channels_on: number;
  channels_handed_back: number;
  controllers: number;
}

export interface ExplainRow {
  controller: string;
  protocol: string;
  channels: number;
  operations: { kind: string; target: string; channels: string[]; detail: string }[];
}

export interface ShowInfo {
  id: string;
  name: string | null;
  target: string;
  duration_s: number;
  loops: number;
  cues: number;
  cue_at_s: number[];
  end: string;
}

export interface Hold {
  kind: string;
  id: number;
  scene?: string | null;
  target: string;
  user: string;
  until: string | null;
  blocks: boolean;
  channels: number;
  controllers: string[];
  description: string;
}

export interface ShowRun {
  run_id: number;
  show: string;
  user?: string;
  status: string;
  started_at: string;
  loop: number;
  loops: number;
  cue: number;
  cues: number;
  sent?: number;
  failed?: number;
}

export interface ShowHeldAnswer {
  error: string;
  held_by: Hold[];
  options: string[];
}

export interface Transition {
  at: string;
  action: "start" | "end";
  scene: string;
  target: string;
  priority: number;
  entry: string;
  event: string;
}

export interface Night {
  date: string;
  workday: boolean;
  holiday: string | null;
  makeup_workday: boolean;
  estimated: boolean;
  festivals: string[];
  shows: string[];
  transitions: Transition[];
}

export interface Nights {
  from: string;
  days: number;
  today: string;
  next_change: string | null;
  calendar_warnings: string[];
  nights: Night[];
}

export interface Curtailment {
  id: number;
  created_at: string;
  user: string;
  target: string;
  cap: number;
  until: string | null;
  channels: number;
  luminaires: number;
  shed_kw: number;
}

export interface ChannelDetail {
  name: string;
  luminaires: number;
  rated_w: number;
  desired: { on?: boolean; level?: number; handed_back?: boolean } | null;
  control: string;
  confirmed: boolean;
  reported: { on: boolean; level: number; power_w: number | null; faults: string[] } | null;
}

export interface ControllerDetail {
  id: string;
  protocol: string;
  site: string;
  link: string;
  last_error: string | null;
  power_w: number | null;
  channels: Record<string, ChannelDetail>;
}

export type LiveEvent =
  | { type: "hello"; status: Status }
  | { type: "link"; controller: string; state: string; error: string | null }
  | { type: "state"; controller: string; channels: Record<string, unknown> }
  | ({ type: "result"; command_id: number; controller: string } & ControllerResult)
  | ({ type: "command" } & CommandReport)
  | { type: "command_started"; command_id: number; user: string; source: string; action: string; scene: string | null; target: string | null }
  | ({ type: "converged"; controller: string } & ControllerResult)
  | ({ type: "show" } & ShowRun)
  | { type: "district"; district: string; event: string; online: boolean; complete: boolean }
  | { type: "overflow"; dropped: number };
