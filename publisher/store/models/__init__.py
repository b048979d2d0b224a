"""SQLAlchemy 2 models. The schema is created and upgraded only by Alembic migrations
(publisher/store/migrations); these classes must stay in step with them.

One module per area, all on one `Base` (base.py); every name is re-exported here, so
`from publisher.store.models import X` reaches any table."""

from __future__ import annotations

from publisher.store.models.base import Base, UTCDateTime
from publisher.store.models.broadcasts import ApprovalRow, BroadcastRow, SendPermissionRow
from publisher.store.models.content import (
    ItemRow,
    MediaRow,
    PostRevisionRow,
    PostRow,
    PublishStateRow,
    SourceRunRow,
    SourceStateRow,
)
from publisher.store.models.delivery import DeliveryBatchRow, DeliveryRow, SendPlanRow, SendWorkRow
from publisher.store.models.editions import (
    CurationRow,
    EditionItemRow,
    EditionRow,
    EditionTallyRow,
    LinkKeyRow,
    PageEventRow,
)
from publisher.store.models.integrations import (
    ApiIdempotencyRow,
    ApiKeyRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookOutboxRow,
)
from publisher.store.models.schedule import (
    CampaignStateRow,
    ProcessHeartbeatRow,
    ScheduleSlotRow,
    SlotOverrideRow,
)
from publisher.store.models.staff import (
    AuditRow,
    LoginFailureRow,
    PasskeyRow,
    RateLimitRow,
    RecoveryCodeRow,
    StaffLinkRow,
    StaffRow,
    StaffSessionRow,
    StaffSettingRow,
)
from publisher.store.models.subscribers import (
    PendingImportLineRow,
    PendingImportRow,
    SubscriberHistoryRow,
    SubscriberListRow,
    SubscriberPauseRow,
    SubscriberRow,
    SubscriberTallyRow,
    SuppressionRow,
    WebhookEventRow,
    _email_hash_of_row,
)

__all__ = [
    "UTCDateTime",
    "Base",
    "ItemRow",
    "PublishStateRow",
    "SourceStateRow",
    "SourceRunRow",
    "PostRow",
    "PostRevisionRow",
    "MediaRow",
    "EditionRow",
    "EditionItemRow",
    "CurationRow",
    "EditionTallyRow",
    "PageEventRow",
    "LinkKeyRow",
    "DeliveryRow",
    "DeliveryBatchRow",
    "SendWorkRow",
    "SendPlanRow",
    "_email_hash_of_row",
    "SubscriberRow",
    "SubscriberHistoryRow",
    "SubscriberPauseRow",
    "SuppressionRow",
    "WebhookEventRow",
    "SubscriberTallyRow",
    "SubscriberListRow",
    "PendingImportRow",
    "PendingImportLineRow",
    "CampaignStateRow",
    "ScheduleSlotRow",
    "SlotOverrideRow",
    "ProcessHeartbeatRow",
    "StaffRow",
    "AuditRow",
    "LoginFailureRow",
    "StaffSessionRow",
    "StaffLinkRow",
    "RecoveryCodeRow",
    "PasskeyRow",
    "StaffSettingRow",
    "RateLimitRow",
    "BroadcastRow",
    "SendPermissionRow",
    "ApprovalRow",
    "WebhookEndpointRow",
    "WebhookOutboxRow",
    "WebhookDeliveryRow",
    "WebhookAttemptRow",
    "ApiKeyRow",
    "ApiIdempotencyRow",
]
