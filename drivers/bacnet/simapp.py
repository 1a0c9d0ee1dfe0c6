"""The simulated device's BACnet services: bacpypes3's application with the device model
(simdevice.SimBuilding) in front of them: faults, request counting, the device's own write
checks, ReadPropertyMultiple, WritePropertyMultiple and COV only where the profile has them,
subscriptions refused where the device model says so, and the abort a device that cannot segment
sends for a reply larger than its APDU."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bacpypes3.apdu import (
    APDU,
    AbortPDU,
    ConfirmedRequestPDU,
    Error,
    ReadPropertyMultipleACK,
    ReadPropertyMultipleRequest,
    SimpleAckPDU,
    SubscribeCOVRequest,
    WhoIsRequest,
    WritePropertyMultipleError,
    WritePropertyMultipleRequest,
    WritePropertyRequest,
)
from bacpypes3.app import Application
from bacpypes3.basetypes import ErrorType, ObjectPropertyReference, PropertyIdentifier, ServicesSupported
from bacpypes3.errors import ExecutionError, UnrecognizedService

if TYPE_CHECKING:
    from drivers.bacnet.simdevice import SimBuilding


def _size_bound(ack: ReadPropertyMultipleACK) -> int:
    """More than the encoded size of a read-property-multiple ack: 16 octets per object and per
    simple value, 160 per whole priority array."""
    total = 5
    for result in ack.listOfReadAccessResults:
        total += 16
        for element in result.listOfResults:
            whole_array = element.propertyIdentifier == PropertyIdentifier.priorityArray and (
                element.propertyArrayIndex is None
            )
            total += 160 if whole_array else 16
    return total


class SimApplication(Application):  # type: ignore[misc]
    """bacpypes3's application with the device model in front of its services."""

    building: SimBuilding

    async def indication(self, apdu: APDU) -> None:
        building = self.building
        if building.offline:
            return
        if isinstance(apdu, ConfirmedRequestPDU | WhoIsRequest):
            building.requests += 1
            name = type(apdu).__name__
            building.by_service[name] = building.by_service.get(name, 0) + 1
        if building.slow_s > 0:
            task = asyncio.current_task()
            assert task is not None
            building.delayed.add(task)
            building.max_in_progress = max(building.max_in_progress, len(building.delayed))
            try:
                await asyncio.sleep(building.slow_s)
            finally:
                building.delayed.discard(task)
        building.tick()
        if building.error and isinstance(apdu, ConfirmedRequestPDU):
            await self.response(
                Error(service_choice=apdu.apduService, errorClass="device",
                      errorCode="operationalProblem", context=apdu)
            )
            return
        await super().indication(apdu)

    async def response(self, apdu: APDU) -> None:
        if isinstance(apdu, ReadPropertyMultipleACK) and _size_bound(apdu) > self.building.profile.max_apdu:
            # A device that cannot segment aborts a reply larger than its APDU (the bound above
            # is cheap; the exact size costs an extra encoding, so only when it may matter).
            size = len(apdu.encode().pduData)
            if size > self.building.profile.max_apdu - 5:  # 5: a complex ack's header
                abort = AbortPDU(srv=True, reason="segmentationNotSupported")
                abort.apduInvokeID = apdu.apduInvokeID
                abort.pduDestination = apdu.pduDestination
                apdu = abort
        await super().response(apdu)

    def get_services_supported(self) -> ServicesSupported:
        supported = super().get_services_supported()
        profile = self.building.profile
        if not profile.read_property_multiple:
            supported["read-property-multiple"] = 0
        if not profile.write_property_multiple:
            supported["write-property-multiple"] = 0
        if not profile.cov:
            supported["subscribe-cov"] = 0
        return supported

    async def do_ReadPropertyMultipleRequest(self, apdu: ReadPropertyMultipleRequest) -> None:
        if not self.building.profile.read_property_multiple:
            raise UnrecognizedService("ReadPropertyMultiple is not supported")
        await super().do_ReadPropertyMultipleRequest(apdu)

    async def do_WritePropertyRequest(self, apdu: WritePropertyRequest) -> None:
        self.building.write(apdu.objectIdentifier, apdu.propertyIdentifier, apdu.propertyValue,
                            apdu.propertyArrayIndex, apdu.priority)
        await self.response(SimpleAckPDU(context=apdu))

    async def do_WritePropertyMultipleRequest(self, apdu: WritePropertyMultipleRequest) -> None:
        if not self.building.profile.write_property_multiple:
            raise UnrecognizedService("WritePropertyMultiple is not supported")
        for spec in apdu.listOfWriteAccessSpecs:
            for value in spec.listOfProperties:
                try:
                    self.building.write(spec.objectIdentifier, value.propertyIdentifier, value.value,
                                        value.propertyArrayIndex, value.priority)
                except ExecutionError as err:
                    failed = ObjectPropertyReference(
                        objectIdentifier=spec.objectIdentifier, propertyIdentifier=value.propertyIdentifier
                    )
                    await self.response(
                        WritePropertyMultipleError(
                            errorType=ErrorType(errorClass=err.errorClass, errorCode=err.errorCode),
                            firstFailedWriteAttempt=failed,
                            context=apdu,
                        )
                    )
                    return
        await self.response(SimpleAckPDU(context=apdu))

    async def do_SubscribeCOVRequest(self, apdu: SubscribeCOVRequest) -> None:
        building = self.building
        if not building.profile.cov:
            raise UnrecognizedService("SubscribeCOV is not supported")
        objid = apdu.monitoredObjectIdentifier
        channel = building.by_object.get((str(objid[0]), int(objid[1])))
        cancelling = apdu.issueConfirmedNotifications is None and apdu.lifetime is None
        if channel is not None and channel.config.id in building.cov_refused and not cancelling:
            raise ExecutionError("services", "covSubscriptionFailed")
        await super().do_SubscribeCOVRequest(apdu)
