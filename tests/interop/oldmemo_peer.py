"""One python3-oldmemo (legacy OMEMO, eu.siacs.conversations.axolotl) device at the backend level:
twomemo_peer.TwomemoPeer with oldmemo's backend and XML (see /work/shared/reference/oldmemo.md
section 6). Run with Debian's interpreter: ``/usr/bin/python3``."""

from __future__ import annotations

import types
import xml.etree.ElementTree as ET
from typing import Dict

import omemo
import oldmemo
import oldmemo.etree
import oldmemo.oldmemo

from twomemo_peer import InMemoryStorage, TwomemoPeer

NAMESPACE = oldmemo.oldmemo.NAMESPACE


class DeviceDirectory:
    """What oldmemo.etree.parse_message asks a session manager for: the sender's devices with their
    Ed25519 identity keys (it takes the sign bit from there), learned from their bundles."""

    def __init__(self) -> None:
        self.known: Dict[str, Dict[int, bytes]] = {}

    async def get_device_information(self, jid: str):
        return [types.SimpleNamespace(device_id=d, identity_key=k) for d, k in self.known.get(jid, {}).items()]

    async def refresh_device_list(self, namespace: str, jid: str) -> None:
        return None


class OldmemoPeer(TwomemoPeer):
    NAMESPACE = NAMESPACE

    def __init__(self, jid: str, device_id: int, refill: bool = True) -> None:
        self.directory = DeviceDirectory()
        super().__init__(jid, device_id, refill)

    def _new_backend(self, storage: InMemoryStorage) -> omemo.Backend:
        return oldmemo.Oldmemo(storage)

    def _bundle_to_xml(self, bundle) -> ET.Element:
        return oldmemo.etree.serialize_bundle(bundle)

    def _parse_bundle(self, elem: ET.Element, jid: str, device_id: int):
        b = oldmemo.etree.parse_bundle(elem, jid, device_id)   # schema + the signature's sign bit
        self.directory.known.setdefault(jid, {})[device_id] = b.identity_key
        return b

    def _message_to_xml(self, msg: omemo.Message) -> ET.Element:
        return oldmemo.etree.serialize_message(msg)

    async def _parse_message(self, elem: ET.Element, sender_jid: str) -> omemo.Message:
        # Every <key> comes back addressed to our own bare JID: legacy keys name a device id only.
        return await oldmemo.etree.parse_message(elem, sender_jid, self.jid, self.directory)
