"""A plain, server-rendered status page (the console proper is the web issue's)."""

from __future__ import annotations

import json
from html import escape
from typing import Any


def _sign_out(csrf_token: str | None) -> str:
    if csrf_token is None:
        return ""
    token = json.dumps(csrf_token)
    return (
        "<button id='sign-out' onclick=\"fetch('/api/v1/session', {method: 'DELETE', headers: {'X-CSRF-Token': "
        f"{escape(token, quote=True)}}}}}).then(() => location.assign('/login'))\">sign out</button>"
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def render_status_page(status: dict[str, Any], metrics: dict[str, Any], who: str, csrf_token: str | None) -> str:
    """``csrf_token``: the session's, for the sign-out button (None: signed in otherwise)."""
    rows = []
    for cid, c in sorted(status["controllers"].items()):
        css = "ok" if c["link"] == "online" else "bad" if c["link"] == "offline" else ""
        power = "—" if c["power_w"] is None else f"{c['power_w'] / 1000:.2f}"
        rows.append(
            f"<tr class='{css}'><td>{escape(cid)}</td><td>{escape(c['protocol'])}</td><td>{escape(c['site'])}</td>"
            f"<td>{escape(c['link'])}</td><td>{c['pending']}</td><td>{c['handed_back'] or ''}</td><td>{power}</td>"
            f"<td>{escape(', '.join(c['faults']))}</td><td>{escape(c['last_error'] or '')}</td></tr>"
        )
    everything = metrics["inventory"].get("all", {})
    on = metrics["lighting_on"]
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>lightctl · {escape(status['installation'])}</title>
<meta http-equiv="refresh" content="5">
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
tr.bad td {{ color: #b00020; }} tr.ok td:nth-child(4) {{ color: #0a7d32; }}
.figures span {{ display: inline-block; margin-right: 2rem; }}
</style></head><body>
<h1>{escape(status['installation'])}</h1>
<p class="figures">
<span id="online">controllers online: {status['controllers_online']} / {status['controllers_total']}</span>
<span>channels not yet confirmed: {status['channels_pending']}</span>
<span id="owners">handed back to their owners: {status['channels_handed_back']}</span>
<span>智能控制率 intelligent-control rate: {_pct(everything.get('intelligent_control_rate'))}</span>
<span>LED share: {_pct(everything.get('led_share'))}</span>
<span>亮灯率 lighting-on rate: {_pct(on['lighting_on_rate'])}</span>
<span>power now: {metrics['power_kw']:.1f} kW</span>
</p>
<p>{status['now']} · overrides in force: {len(status['overrides'])} · {escape(who)} {_sign_out(csrf_token)}</p>
<table><thead><tr><th>controller</th><th>protocol</th><th>site</th><th>link</th><th>pending</th><th>owner's</th><th>kW</th>
<th>faults</th><th>last error</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table></body></html>
"""
