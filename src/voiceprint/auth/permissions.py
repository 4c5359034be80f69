"""The permission names of the Coze voiceprint API, spelled exactly as Coze spells them."""

from __future__ import annotations

ALL = "all"

CREATE_GROUP = "createVoiceprintGroup"
LIST_GROUPS = "listVoiceprintGroup"
UPDATE_GROUP = "updateVoiceprintGroup"
DELETE_GROUP = "deleteVoiceprintGroup"
CREATE_FEATURE = "createVoiceprintFeature"
LIST_FEATURES = "listVoiceprintFeature"
UPDATE_FEATURE = "updateVoiceprintFeature"
DELETE_FEATURE = "deleteVoiceprintFeature"
IDENTIFY = "identifyInVoiceprintGroup"

PERMISSIONS = (
    CREATE_GROUP,
    LIST_GROUPS,
    UPDATE_GROUP,
    DELETE_GROUP,
    CREATE_FEATURE,
    LIST_FEATURES,
    UPDATE_FEATURE,
    DELETE_FEATURE,
    IDENTIFY,
)


def parse_permissions(text: str) -> frozenset[str]:
    """``"all"`` or a comma-separated list of the names above; unknown names are an error."""
    names = {p.strip() for p in text.split(",") if p.strip()}
    if not names:
        raise ValueError("no permissions given")
    if ALL in names:
        return frozenset(PERMISSIONS)
    unknown = names - set(PERMISSIONS)
    if unknown:
        raise ValueError(
            f"unknown permission(s) {', '.join(sorted(unknown))}; use 'all' or some of: "
            + ", ".join(PERMISSIONS)
        )
    return frozenset(names)
