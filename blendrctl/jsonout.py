"""``--json`` output of the renter's commands: one form per unit, named in the field.

* Amounts of GPUTOKEN (the wire carries wei as decimal strings) become decimal strings of GPUTOKEN, exact to
  the wei, in fields whose name ends with ``_gputoken`` (``price_per_gpu_hour_gputoken: "0.45"``), as the text
  output shows them.
* Ids, hashes, keys and signatures (bytes on the wire) become ``0x``-hex strings, as the text output shows them.
* Enums become their lower-case names without the prefix (``"settled"``); every field is present, defaults too.
"""

from __future__ import annotations

from typing import Any

from blendr.units import fmt_tokens

#: The wire's wei fields (renter.proto): in the JSON they are named ``<name>_gputoken``.
WEI_FIELDS = frozenset({
    "max_price_per_gpu_hour", "ask_per_gpu_hour", "price_per_gpu_hour", "max_escrow", "escrow",
    "provider_payment", "fee", "refund", "cost_so_far", "min_ask_per_gpu_hour", "quote_per_gpu_hour", "balance",
    "allowance", "in_escrow", "slashed", "fees_burned", "fees_burn_pending",
    "votes_for", "votes_against", "votes_abstain", "quorum",  # governance proposals (ListProposals)
})
_EXACT = 18  # decimal places of GPUTOKEN: every wei shown


def gputoken(wei_text: str) -> str:
    """A wire amount (wei as a decimal string; empty: 0) as an exact decimal string of GPUTOKEN."""
    return fmt_tokens(int(wei_text or "0"), places=_EXACT)


def to_json(msg: Any) -> dict[str, Any]:
    """A protobuf message as a JSON-ready dict in the forms above."""
    from google.protobuf.descriptor import FieldDescriptor as F

    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        name = fd.name
        if fd.type == F.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry:
            out[name] = {k: (to_json(v) if hasattr(v, "DESCRIPTOR") else v) for k, v in value.items()}
            continue
        repeated = bool(fd.is_repeated)

        def one(v: Any, fd: Any = fd) -> Any:
            if fd.type == F.TYPE_MESSAGE:
                return to_json(v)
            if fd.type == F.TYPE_BYTES:
                return "0x" + bytes(v).hex()
            if fd.type == F.TYPE_ENUM:
                label = fd.enum_type.values_by_number[v].name if v in fd.enum_type.values_by_number else str(v)
                prefix = _enum_prefix(fd.enum_type)
                return label[len(prefix):].lower() if label.startswith(prefix) else label.lower()
            if fd.name in WEI_FIELDS and fd.type == F.TYPE_STRING:
                return gputoken(v)
            return v

        if fd.type == F.TYPE_MESSAGE and not repeated and not msg.HasField(name):
            out[name] = None
            continue
        if fd.name in WEI_FIELDS and fd.type == F.TYPE_STRING:
            name = f"{fd.name}_gputoken"
        out[name] = [one(v) for v in value] if repeated else one(value)
    return out


def _enum_prefix(enum_type: Any) -> str:
    """``JOB_STATE_`` of ``JobState``: the upper snake case of the enum's name and an underscore."""
    name = enum_type.name
    snake = "".join(("_" + c if c.isupper() and i else c) for i, c in enumerate(name)).upper()
    return snake + "_"
