"""How office content reads in the bot."""

from __future__ import annotations

from counseldesk.content.models import OfficeSettings
from counseldesk.i18n import t


def contact_text(office: OfficeSettings, lang: str | None) -> str:
    lines = [t("contact.title", lang, office=office.office_name)]
    for key, value in (
        ("contact.phone", office.phone),
        ("contact.email", office.email),
        ("contact.location", office.location),
        ("contact.hours", office.office_hours),
        ("contact.website", office.website),
    ):
        if value:
            lines.append(t(key, lang, value=value))
    if office.emergency_contacts:
        lines.append("")
        lines.append(t("contact.emergency", lang, value=office.emergency_contacts))
    if len(lines) == 1:
        lines.append(t("contact.none", lang))
    return "\n".join(lines)
