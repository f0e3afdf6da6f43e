"""The seam between pull and push: how a transfer hands its records to its outlets.

* :mod:`~databay_bus.delivery.base`: the :class:`Delivery` contract, :class:`Lane`,
  :class:`Outcome` and :class:`DeliveryLink` (what a delivery may use of its link);
* :mod:`~databay_bus.delivery.direct`: :class:`DirectDelivery`, Databay's behaviour (no queue);
* :mod:`~databay_bus.delivery.queued`: :class:`QueueDelivery`, what ``Link(queue=...)`` uses:
  store first, then push what is due, with retries and dead letters.

Storage itself lives in :mod:`databay_bus.queue`.
"""

from __future__ import annotations

from databay_bus.delivery.base import Delivery, DeliveryLink, Lane, Outcome, unique_names
from databay_bus.delivery.direct import DirectDelivery
from databay_bus.delivery.queued import QueueDelivery

__all__ = [
    "Delivery",
    "DeliveryLink",
    "DirectDelivery",
    "Lane",
    "Outcome",
    "QueueDelivery",
    "unique_names",
]
