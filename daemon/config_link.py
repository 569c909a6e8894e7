"""The `[link]` table of tagd.toml (daemon.settings.LinkSettings), declared like the tables of daemon.config.

Staff card IDs follow the client ID rules (letters and digits). They are kept as written and compared
case-insensitively by daemon.linkmode, the way the server compares client IDs.
"""

from __future__ import annotations

from .config_fields import Field, float_range, matching, str_list

STAFF_CARD = matching(r"[A-Za-z0-9]{1,64}", 'a card ID of letters and digits such as "STAFF01"')

LINK_FIELDS = (
    # Bounded above: link mode takes the reader away from check-ins, so it must end on its own soon.
    Field("timeout_s", float_range(5, 600)),
    Field("confirm_s", float_range(1, 60)),
    Field("staff_cards", str_list(STAFF_CARD)),
)
