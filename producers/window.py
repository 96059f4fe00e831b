"""Meta's messaging windows, the contract's defaults (fact sheet §0, §1.2, IGL-PR).

The enqueue script and the journal decide with `producers/lua/window.lua`, reading the limits
the workers publish (their `IG_OUTBOUND_WINDOW__*` settings, `worker/settings.py`); until a
worker has published, these defaults apply. One definition: the Lua prelude is generated
from these names.
"""

from __future__ import annotations

from typing import Literal

# "Your app has 24 hours to respond to any message sent from an Instagram user" (IGL-SEND).
WINDOW_STANDARD_S = 24 * 3600
# HUMAN_AGENT: "manually respond to user messages within a 7-day period" (POLICY).
WINDOW_HUMAN_AGENT_S = 7 * 24 * 3600
# A private reply: within 7 days of the comment, one per comment (IGL-PR).
WINDOW_PRIVATE_REPLY_S = 7 * 24 * 3600
# Sent this much before the window closes at the latest: a request takes time to arrive.
WINDOW_MARGIN_S = 60
# No webhook fact and no window_hint: `allow` lets Graph decide, `refuse` refuses.
WindowUnknown = Literal["allow", "refuse"]
WINDOW_UNKNOWN: WindowUnknown = "allow"
# Window facts live a day longer than the longest window they can open.
FACTS_TTL_S = WINDOW_HUMAN_AGENT_S + 24 * 3600
