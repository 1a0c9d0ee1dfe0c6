"""What 5,000 cabinets alike share in memory (the daemon must stay under 300 MB at that size,
``lightctl bench soak --controllers 5000``): selector sets stored once, one channel map and one
status decoder per kind of cabinet. Sharing must not change what anything selects or decodes."""

from __future__ import annotations

import pytest
from conftest import build_config, installation_data, modbus_controller

from drivers.modbus.driver import ModbusDriver
from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError


def inventory() -> Inventory:
    data = installation_data([modbus_controller(f"m{i}", i, channels=2 if i == 5 else 4) for i in range(6)], per_site=3)
    return Inventory(build_config(data))


def test_names_of_one_place_share_one_set_and_select_what_they_always_did() -> None:
    inv = inventory()
    site = next(iter(inv.sites.values()))
    by_id, by_name, by_english = (inv.select(f"site:{n}") for n in (site.id, site.name, site.name_en))
    assert by_id == by_name == by_english and len(by_id) == 12
    table = inv._index["site"]
    assert table[site.id] is table[site.name] is table[site.name_en]
    assert inv.select("district:渝中") == inv.select("district:Yuzhong") == inv.select("district:d1") == by_id
    assert inv.select("district:江北") == inv.select("*") - by_id


def test_a_channel_selector_is_worked_out_when_asked() -> None:
    inv = inventory()
    assert inv.select("channel:m0/c1") == {("m0", "c1")}
    assert inv.select("controller:m0, !channel:m0/c1") == {("m0", "c2"), ("m0", "c3"), ("m0", "c4")}
    with pytest.raises(SelectorError, match=r"unknown channel 'm0/c9'.*did you mean m0/c"):
        inv.select("channel:m0/c9")
    with pytest.raises(SelectorError):
        inv.select("channel:m0")


def test_cabinets_alike_share_their_channel_map_and_decoder_and_others_do_not() -> None:
    inv = inventory()
    drivers = {cid: ModbusDriver(info.controller) for cid, info in inv.controllers.items()}
    short = next(cid for cid, d in drivers.items() if len(d.cmap.circuit_of) == 2)
    alike = [d for cid, d in drivers.items() if cid != short]
    assert all(d.cmap is alike[0].cmap and d._decoder is alike[0]._decoder for d in alike)
    assert drivers[short].cmap is not alike[0].cmap and drivers[short]._decoder is not alike[0]._decoder
