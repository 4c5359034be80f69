"""Who may see and change what, checked in one order everywhere.

Permission first (``PermissionDenied``), then existence in the caller's
workspace (``NotFound``: another workspace's ids look exactly like missing
ones), then ownership where an edit requires it (``PermissionDenied``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from voiceprint.auth.tokens import Principal
from voiceprint.service.errors import NotFound, PermissionDenied
from voiceprint.store.models import Feature, Group


def require(caller: Principal, permission: str) -> None:
    if permission not in caller.permissions:
        raise PermissionDenied(f"the token lacks the '{permission}' permission")


def visible_group(
    session: Session, caller: Principal, group_id: int, *, lock: bool = False
) -> Group:
    """The caller's group; ``lock`` holds its row until the transaction ends (PostgreSQL:
    ``SELECT ... FOR UPDATE``), so quota checks of several server processes take turns."""
    group = session.get(Group, group_id, with_for_update=lock)
    if group is None or group.workspace_id != caller.workspace_id:
        raise NotFound(f"voiceprint group {group_id} does not exist")
    return group


def owned_group(session: Session, caller: Principal, group_id: int) -> Group:
    group = visible_group(session, caller, group_id)
    if group.creator_id != caller.account_id:
        raise PermissionDenied("only the creator of a voiceprint group may change or delete it")
    return group


def feature_in_group(
    session: Session, group_id: int, feature_id: int, *, lock: bool = False
) -> Feature:
    """The voiceprint, if it belongs to the group (whose visibility is checked apart)."""
    feature = session.get(Feature, feature_id, with_for_update=lock)
    if feature is None or feature.group_id != group_id:
        raise NotFound(f"voiceprint {feature_id} does not exist in group {group_id}")
    return feature


def owned_feature(
    session: Session, caller: Principal, group_id: int, feature_id: int, *, lock: bool = False
) -> Feature:
    visible_group(session, caller, group_id)
    feature = feature_in_group(session, group_id, feature_id, lock=lock)
    if feature.creator_id != caller.account_id:
        raise PermissionDenied("only the creator of a voiceprint may change or delete it")
    return feature
