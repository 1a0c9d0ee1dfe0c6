"""A session's node ids: the profile's browse paths resolved on the PLC after each connect.

Numeric node ids are never configured: they change whenever the PLC program is rebuilt, and the
namespace index changes when the vendor adds a namespace. Only the namespace URI and the browse
names are stable, so they are what the profile holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from asyncua import Client, ua

from drivers.base import ProtocolFault
from drivers.opcua.profile import PlcKey, Profile, ZoneKey
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelId

OPTIONAL_ZONE_KEYS = frozenset({"fade_s", "#method"})
"""Paths a PLC may lack without the profile being wrong (older firmware: no fades, no method)."""


@dataclass(frozen=True, slots=True)
class NodeRef:
    node: ua.NodeId
    path: str
    """``BridgeLighting/Zones/deck/Level``: how errors name the node."""


@dataclass
class Resolved:
    """A session's view of the profile: browse paths resolved to this PLC build's node ids."""

    zones: dict[ChannelId, dict[ZoneKey, NodeRef]] = field(default_factory=dict)
    plc: dict[PlcKey, NodeRef] = field(default_factory=dict)
    method: tuple[ua.NodeId, NodeRef] | None = None


async def resolve(client: Client, controller: ControllerConfig, profile: Profile) -> Resolved:
    """Namespace index by URI (one Read), then every browse path of the profile for this
    controller's channels in one TranslateBrowsePathsToNodeIds call."""
    timeout = controller.timeout_s
    async with asyncio.timeout(timeout):
        namespaces: list[str] = await client.get_namespace_array()
    if profile.namespace_uri not in namespaces:
        raise ProtocolFault(
            controller.id,
            f"the PLC has no namespace {profile.namespace_uri} (profile {profile.name}); "
            f"it has {', '.join(namespaces[1:]) or 'none'}",
        )
    idx = namespaces.index(profile.namespace_uri)
    wanted: list[tuple[ChannelId | None, str, list[str]]] = []  # (channel, key, browse path)
    for channel in controller.channels:
        for key in profile.zone_variables:
            if key in ("rgb", "cct") and channel.colour != key:
                continue
            wanted.append((channel.id, key, profile.zone_path(str(channel.point), key)))
    for pkey in profile.plc_variables:
        wanted.append((None, pkey, profile.plc_path(pkey)))
    if profile.recall_scene is not None:
        wanted.append((None, "#root", list(profile.root)))
        wanted.append((None, "#method", profile.method_path()))
    paths = [_browse_path(path, idx) for _, _, path in wanted]
    async with asyncio.timeout(timeout):
        results = await client.uaclient.translate_browsepaths_to_nodeids(paths)
    resolved = Resolved()
    root: ua.NodeId | None = None
    missing = []
    for (channel_id, what, path), result in zip(wanted, results, strict=True):
        text = "/".join(path)
        if not result.StatusCode.is_good() or not result.Targets:
            if what not in OPTIONAL_ZONE_KEYS:
                missing.append(f"{text} ({result.StatusCode.name})")
            continue
        node = result.Targets[0].TargetId
        node_id = ua.NodeId(node.Identifier, node.NamespaceIndex, node.NodeIdType)
        ref = NodeRef(node_id, text)
        if what == "#root":
            root = node_id
        elif what == "#method":
            if root is not None:
                resolved.method = (root, ref)
        elif channel_id is None:
            resolved.plc[what] = ref  # type: ignore[index]
        else:
            resolved.zones.setdefault(channel_id, {})[what] = ref  # type: ignore[index]
    if missing:
        raise ProtocolFault(
            controller.id,
            f"browse paths not found on the PLC (profile {profile.name}): {'; '.join(missing)}",
        )
    return resolved


def _browse_path(names: list[str], idx: int) -> ua.BrowsePath:
    elements = [
        ua.RelativePathElement(
            ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),
            IsInverse=False,
            IncludeSubtypes=True,
            TargetName=ua.QualifiedName(name, idx),
        )
        for name in names
    ]
    return ua.BrowsePath(
        StartingNode=ua.NodeId(ua.ObjectIds.ObjectsFolder), RelativePath=ua.RelativePath(Elements=elements)
    )
