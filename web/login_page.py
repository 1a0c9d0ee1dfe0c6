"""The sign-in page: a plain form (no script), posted to ``POST /api/v1/session``, which answers a
form with a redirect to where the browser was going, or this page again with why not."""

from __future__ import annotations

from html import escape


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this daemon only (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def render_login_page(installation: str, next_path: str, message: str | None = None) -> str:
    notice = f"<p class='bad' role='alert'>{escape(message)}</p>" if message else ""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>lightctl · 登录 sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px system-ui, sans-serif; margin: 3rem auto; max-width: 22rem; color: #222; }}
label {{ display: block; margin: 0.8rem 0 0.2rem; }} input {{ width: 100%; padding: 0.4rem; box-sizing: border-box; }}
button {{ margin-top: 1.2rem; padding: 0.4rem 1.5rem; }} .bad {{ color: #b00020; }}
</style></head><body>
<h1>{escape(installation)}</h1>
{notice}
<form method="post" action="/api/v1/session">
<input type="hidden" name="next" value="{escape(safe_next(next_path), quote=True)}">
<label for="user">用户名 user</label><input id="user" name="user" autocomplete="username" required autofocus>
<label for="password">密码 password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">登录 sign in</button>
</form></body></html>
"""
