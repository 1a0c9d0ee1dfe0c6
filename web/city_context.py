"""The city daemon an app of the city serves (web.city, web.city_cases)."""

from __future__ import annotations

from aiohttp import web

from lightctl.federation.city import CityDaemon

CITY = web.AppKey("city", CityDaemon)


def city_of(request: web.Request) -> CityDaemon:
    return request.app[CITY]
